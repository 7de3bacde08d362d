using Fleet.Ingest.Events;
using Fleet.Predict.Learning;
using Fleet.Predict.Offline;

namespace Fleet.Predict.Tests.Offline;

/// <summary>
/// A simulated day on <see cref="LineFeed"/>: segments take 130·(1 + c) s against the timetable's 120 s, plus a
/// 15 s dwell, where c is a congestion level per segment that drifts minute by minute (AR(1), φ = 0.97 a minute,
/// stationary σ ≈ 0.2) and is shared by vehicles that drive the segment minutes apart. The vehicle ahead tells the
/// vehicle behind what to expect; the timetable and the delay carried forward cannot know it.
/// </summary>
internal static class SyntheticDay
{
    public static ReplayDay Create(LineFeed feed, ulong seed, bool withStopEvents = false)
    {
        var schedule = feed.Schedule;
        var rng = new Pcg32(seed, 99);
        const int Minutes = 24 * 60;
        var congestion = new double[LineFeed.Stops, Minutes];
        for (var s = 0; s < LineFeed.Stops; s++)
        {
            var level = 0.0;
            for (var m = 0; m < Minutes; m++)
            {
                level = (0.97 * level) + (0.05 * rng.NextGaussian());
                congestion[s, m] = Math.Clamp(level, -0.4, 0.8);
            }
        }

        var replay = new OfflineReplay(schedule, new ReplayOptions { SampleIntervalSeconds = 20 });
        var actuals = new ActualStopTimes();
        var origin = feed.Unix(0);
        for (var t = 0; t < feed.Trips; t++)
        {
            var tripIndex = feed.TripIndex(t);
            var key = new TripKey(tripIndex, LineFeed.Day);
            var actual = actuals.GetOrAdd(schedule, key);
            var vehicle = "0001/" + (100 + t);
            actual.Vehicle = vehicle;
            var start = LineFeed.FirstStart + (t * LineFeed.Headway);
            var time = start + (rng.NextDouble() * 10);
            actual.Arrival[0] = actual.Departure[0] = origin + time;
            var events = new List<VehicleEvent>();
            for (var s = 1; s < LineFeed.Stops; s++)
            {
                var minute = (int)(time / 60);
                var run = Math.Max(30, (130 * (1 + congestion[s, minute])) + (3 * rng.NextGaussian()));
                // Positions every 10 s along the segment, with the HFP-style delay against the timetable.
                for (var dt = 0.0; dt < run; dt += 10)
                {
                    var along = ((s - 1) * 500) + (500 * dt / run);
                    var scheduled = start + ((s - 1) * LineFeed.SegmentSeconds) + (LineFeed.SegmentSeconds * dt / run);
                    events.Add(Vp(vehicle, start, origin + time + dt, along, (int)Math.Round(time + dt - scheduled)));
                }

                time += run;
                actual.Arrival[s] = origin + time;
                var dwell = s == LineFeed.Stops - 1 ? 0 : Math.Max(0, 15 + (3 * rng.NextGaussian()));
                if (withStopEvents)
                {
                    events.Add(StopEvent(EventType.Ars, vehicle, start, origin + time, "S" + s));
                    events.Add(StopEvent(EventType.Pde, vehicle, start, origin + time + dwell, "S" + s));
                }

                time += dwell;
                actual.Departure[s] = origin + time;
            }

            if (withStopEvents)
            {
                events.Insert(0, StopEvent(EventType.Pde, vehicle, start, actual.Departure[0], "S0"));
            }

            foreach (var ev in events)
            {
                replay.Add(ev);
            }
        }

        replay.FinishDetection();
        return new ReplayDay(replay, actuals);
    }

    private static VehicleEvent Base(EventType type, string vehicle, int start, double unix)
    {
        var ev = VehicleEvent.Empty;
        ev.Source = EventSource.Hfp;
        ev.Type = type;
        ev.Journey = JourneyType.Journey;
        ev.VehicleId = vehicle;
        ev.RouteId = "R";
        ev.DirectionId = 0;
        ev.OperatingDay = LineFeed.Day;
        ev.StartTimeSeconds = start;
        ev.EventTime = PredictionContext.FromUnix(unix);
        return ev;
    }

    private static VehicleEvent Vp(string vehicle, int start, double unix, double along, int delay)
    {
        var ev = Base(EventType.Vp, vehicle, start, unix);
        ev.Odometer = along;
        ev.DelaySeconds = delay;
        return ev;
    }

    private static VehicleEvent StopEvent(EventType type, string vehicle, int start, double unix, string stop)
    {
        var ev = Base(type, vehicle, start, unix);
        ev.StopId = stop;
        return ev;
    }
}
