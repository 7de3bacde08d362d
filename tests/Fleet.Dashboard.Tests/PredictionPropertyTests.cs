using System.Globalization;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Gtfs.Realtime;
using Fleet.Simulation;
using Fleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Properties of the live predictions over whole replayed recordings, as <c>fleet serve</c> replays them (the real
/// <see cref="ReplaySource"/>, tracking and <see cref="LiveEvents"/>, paced by a fake clock), sampled every 5 s of
/// replay, with and without seeks and loops:
/// (1) our GTFS-RT TripUpdates feed has no finding from our validator;
/// (2) no prediction names a stop its vehicle has already left (against the generator's truth) or that tracking saw
///     it reach;
/// (3) every vehicle's next stops are one trip in stop_sequence order, then its block's next trip, with predicted
///     times never going back;
/// (4) after a seek or a loop nothing predicted before it remains, in the store or in a subscriber's view;
/// (5) an app that applies the pushed predictions and withdrawals holds exactly what the server holds.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PredictionPropertyTests
{
    // How long after its vehicle left a stop (truth) a prediction for it may still stand: the time the vehicle's
    // reports take to arrive (the generator's buses send a backlog after a tunnel) plus one tracking batch.
    private static readonly TimeSpan PassedTolerance = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SampleCity_WholeReplayWithModel_PropertiesHoldAtEverySample()
    {
        var dir = RepoPaths.SampleData;
        await using var probe = await ReplayProbe.StartAsync(
            Path.Combine(dir, "recording.hfp.gz"), Path.Combine(dir, "gtfs.zip"), Path.Combine(dir, "truth.csv"),
            Path.Combine(dir, "model.bin"), loop: false);

        var samples = await probe.RunAsync(until: p => p.Replay.State.Finished, seeks: []);

        Assert.True(samples > 600, $"{samples} samples of a one-hour recording");
        probe.AssertNoViolations();
        Assert.True(probe.MaxPredictions > 500, $"at most {probe.MaxPredictions} predictions live: too few to test anything");
        Assert.True(probe.Withdrawn > 1000, $"{probe.Withdrawn} withdrawals over an hour of 56 buses");
    }

    [Fact]
    public async Task SampleCity_SeeksAndLoop_NothingPredictedBeforeRemains()
    {
        var dir = RepoPaths.SampleData;
        await using var probe = await ReplayProbe.StartAsync(
            Path.Combine(dir, "recording.hfp.gz"), Path.Combine(dir, "gtfs.zip"), Path.Combine(dir, "truth.csv"),
            Path.Combine(dir, "model.bin"), loop: true);

        // Forward, back, forward to near the end (so the replay loops), then on into the second round.
        var samples = await probe.RunAsync(
            until: p => p.Replay.State.Round >= 1 && p.SamplesSinceRestart > 120,
            seeks: [(60, 0.5), (150, 0.2), (260, 0.9)]);

        Assert.True(samples > 300, $"{samples} samples");
        Assert.Equal(4, probe.Restarts); // three seeks and a loop
        probe.AssertNoViolations();
    }

    [Fact]
    public async Task SampleCity_PersistedTrackingAsServeRunsIt_FeedCleanNoPassedStopOrderedWithSeeks()
    {
        // The default `fleet serve` tracks on Akka.NET partitions with a store: the partitions work on their own threads,
        // so a sample sees them mid-work. What must hold at any moment is checked (the feed, passed stops against the
        // truth, next stops' order, nothing from before a seek, rounds and store consistent).
        var dir = RepoPaths.SampleData;
        await using var cluster = new Fleet.Actors.Hosting.TrackingCluster(new Fleet.Actors.Hosting.FleetAkkaOptions());
        await using var probe = await ReplayProbe.StartAsync(
            Path.Combine(dir, "recording.hfp.gz"), Path.Combine(dir, "gtfs.zip"), Path.Combine(dir, "truth.csv"),
            Path.Combine(dir, "model.bin"), loop: false, cluster: cluster);

        var samples = await probe.RunAsync(until: p => p.Replay.State.Finished, seeks: [(150, 0.6), (300, 0.3)]);

        Assert.True(samples > 400, $"{samples} samples");
        Assert.Equal(2, probe.Restarts);
        probe.AssertNoViolations();
        Assert.True(probe.MaxPredictions > 500, $"at most {probe.MaxPredictions} predictions live");
    }

    [Fact]
    public async Task GeneratedCity_AnotherSeed_PropertiesHoldWithSeeks()
    {
        var dir = Directory.CreateTempSubdirectory("fleet-props-").FullName;
        try
        {
            var summary = CityGenerator.Generate(new GenerateOptions { City = 2, Seed = 60617, Routes = 5, Vehicles = 40, Hours = 1 }, dir);
            await using var probe = await ReplayProbe.StartAsync(summary.RecordingPath, summary.GtfsPath, summary.TruthPath, model: null, loop: false);

            var samples = await probe.RunAsync(until: p => p.Replay.State.Finished, seeks: [(200, 0.1), (400, 0.6)]);

            Assert.True(samples > 400, $"{samples} samples");
            Assert.Equal(2, probe.Restarts);
            probe.AssertNoViolations();
            Assert.True(probe.MaxPredictions > 200, $"at most {probe.MaxPredictions} predictions live");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A replay of one recording into a live state, stepped by a fake clock and checked at every step.</summary>
    private sealed class ReplayProbe : IAsyncDisposable
    {
        private const double Speed = 10;
        private static readonly TimeSpan Step = TimeSpan.FromSeconds(0.5); // 5 s of replay per sample
        private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));
        private readonly LiveEventsTests.RecordingTransport _transport = new();
        private readonly Dictionary<(string Trip, int Sequence), DateTime> _left = [];
        private readonly List<string> _violations = [];
        private readonly Dictionary<PredictionKey, ArrivalPrediction> _appView = [];
        private int _appSeen;
        private GtfsRtValidator _validator = null!;
        private HashSet<ArrivalPrediction>? _beforeRestart;
        private double _lastPosition;
        private int _lastRound;
        private int _pendingRestartChecks;

        private Fleet.Actors.Hosting.TrackingCluster? _cluster;

        private ReplayProbe()
        {
            Live = new LiveEvents(new LiveOptions(), _transport, _clock, NullLogger<LiveEvents>.Instance);
        }

        public LiveEvents Live { get; }

        public ReplaySource Replay { get; private set; } = null!;

        public int Restarts { get; private set; }

        public int SamplesSinceRestart { get; private set; }

        public int MaxPredictions { get; private set; }

        public long Withdrawn => Live.WithdrawnCount;

        public static async Task<ReplayProbe> StartAsync(string recording, string gtfs, string truth, string? model, bool loop,
            Fleet.Actors.Hosting.TrackingCluster? cluster = null)
        {
            var probe = new ReplayProbe();
            if (cluster is null)
            {
                cluster = probe._cluster = new Fleet.Actors.Hosting.TrackingCluster(new Fleet.Actors.Hosting.FleetAkkaOptions());
            }

            var network = GtfsNetwork.Load(gtfs);
            probe._validator = new GtfsRtValidator(network.Schedule);
            probe.ReadTruth(truth);
            var predictors = model is null ? null : new ArrivalPredictors(
                new ServeOptions { ModelPath = model, RetrainEvery = TimeSpan.Zero }, NullLogger<ArrivalPredictors>.Instance, network);
            probe.Replay = new ReplaySource(
                new ReplayOptions { Path = recording, Speed = Speed, Loop = loop, ShiftToNow = true },
                probe.Live, new SourceRegistry(), probe._clock, NullLogger<ReplaySource>.Instance, cluster, network, predictors: predictors);

            // An app following every route: it applies pushes and withdrawals as a SignalR client would.
            probe.Live.Connect("app");
            foreach (var route in network.Routes)
            {
                probe.Live.Subscribe("app", new Subscription(SubscriptionKind.Route, route.Id, default));
            }

            await probe.Replay.StartAsync(Ct);
            return probe;
        }

        /// <summary>Steps the replay until <paramref name="until"/>, sampling after every step; returns the samples taken.</summary>
        /// <param name="until">When to stop.</param>
        /// <param name="seeks">(sample number, position): seeks made at those samples.</param>
        public async Task<int> RunAsync(Func<ReplayProbe, bool> until, (int Sample, double Position)[] seeks)
        {
            var samples = 0;
            while (!until(this))
            {
                Assert.True(samples < 5000, "the replay does not end");
                foreach (var (at, position) in seeks)
                {
                    if (at == samples)
                    {
                        Replay.Seek(position);
                    }
                }

                _clock.Advance(Step);
                await WaitForReplayAsync();
                Check();
                samples++;
            }

            return samples;
        }

        public void AssertNoViolations() =>
            Assert.True(_violations.Count == 0, $"{_violations.Count} violations, the first ones:\n" + string.Join('\n', _violations.Take(25)));

        // The replay has caught up with the clock when it waits on it again (or has finished).
        private async Task WaitForReplayAsync()
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!_clock.HasPendingTimers && !Replay.State.Finished)
            {
                Assert.True(DateTime.UtcNow < until, "the replay did not wait on the clock again within 60 s");
                await Task.Delay(1, Ct);
            }

            // Let a continuation that has just armed its timer finish its step (the timer is armed last).
            await Task.Yield();

            // Tracking on Akka.NET goes on after the replay waits: the fake clock gives it no time of its own,
            // so the sample waits for the vehicles to have taken what was sent (in real time they keep up: the
            // replay's 5 s take half a second at 10x).
            if (Replay.Persistent?.Stream is { } stream)
            {
                while (stream.Pending > 0)
                {
                    Assert.True(DateTime.UtcNow < until, "the persisted tracking did not catch up within 60 s");
                    await Task.Delay(1, Ct);
                }
            }
        }

        private void Check()
        {
            var state = Replay.State;
            var restarted = state.Round != _lastRound || state.Position < _lastPosition - 1e-9 || state.Position > _lastPosition + 0.05;
            _lastRound = state.Round;
            _lastPosition = state.Position;
            if (restarted && _beforeRestart is not null)
            {
                Restarts++;
                SamplesSinceRestart = 0;
                _pendingRestartChecks = 1;
            }

            SamplesSinceRestart++;
            Live.Flush(); // expiry, staleness and the pushes, as the lanes do
            ApplyPushes();
            var now = _clock.GetUtcNow().UtcDateTime;
            var recordedNow = state.RecordedTime ?? DateTime.MinValue;
            var all = Live.AllPredictions();
            MaxPredictions = Math.Max(MaxPredictions, all.Count);
            var where = $"[round {state.Round}, {state.Position:P1}, {recordedNow:HH:mm:ss}]";

            // (1) The feed validates clean.
            var feed = TripUpdatesFeed.Build(all, now);
            foreach (var f in _validator.Validate(feed, now).Findings)
            {
                _violations.Add($"{where} feed {f.Code} {f.EntityId}: {f.Message}");
            }

            // (2) No prediction for a stop its vehicle has left (truth), or that tracking saw it reach.
            foreach (var p in all)
            {
                if (_left.TryGetValue((p.TripId, p.StopSequence), out var left) && left < recordedNow - PassedTolerance)
                {
                    _violations.Add($"{where} {p.VehicleId} predicted at {p.StopId} (seq {p.StopSequence}) of {p.TripId}, left at {left:HH:mm:ss}");
                }

                if (Live.HasPassed(p.TripId, p.StopSequence))
                {
                    _violations.Add($"{where} {p.VehicleId} predicted at {p.StopId} (seq {p.StopSequence}) of {p.TripId}, which tracking saw it reach");
                }
            }

            // (3) Next stops: one trip in stop_sequence order, then the block's next trip, times never going back.
            foreach (var vehicleId in all.Select(p => p.VehicleId).OfType<string>().Distinct(StringComparer.Ordinal))
            {
                CheckNextStops(where, vehicleId, Live.PredictionsOfVehicle(vehicleId));
            }

            // (4) After a seek or a loop, nothing predicted before it.
            if (_pendingRestartChecks > 0 && _beforeRestart is not null)
            {
                _pendingRestartChecks--;
                foreach (var p in all.Where(_beforeRestart.Contains))
                {
                    _violations.Add($"{where} after a restart: {p.TripId} at {p.StopId} predicted before it still stands");
                }

                foreach (var p in _appView.Values.Where(_beforeRestart.Contains))
                {
                    _violations.Add($"{where} after a restart: the app still shows {p.TripId} at {p.StopId} predicted before it");
                }
            }

            _beforeRestart = [.. all];

            // The store and the rounds agree (read under the round lock: true at any moment).
            foreach (var finding in Live.CheckRounds().Take(5))
            {
                _violations.Add($"{where} {finding}");
            }

            // (5) The app's view is the server's.
            var server = all.Where(p => p.RouteId is not null).Select(p => new PredictionKey(p.StopId, p.TripId)).ToHashSet();
            foreach (var key in _appView.Keys.Where(k => !server.Contains(k)).Take(5))
            {
                _violations.Add($"{where} the app still shows {key.TripId} at {key.StopId}: its withdrawal never came");
            }

            foreach (var key in server.Where(k => !_appView.ContainsKey(k)).Take(5))
            {
                _violations.Add($"{where} the app never got {key.TripId} at {key.StopId}");
            }

        }

        private void CheckNextStops(string where, string vehicleId, IReadOnlyList<ArrivalPrediction> next)
        {
            string? trip = null, nextTrip = null;
            var lastSequence = -1;
            var lastTime = DateTime.MinValue;
            var inNextTrip = false;
            foreach (var p in next)
            {
                if (p.NextTrip && !inNextTrip)
                {
                    inNextTrip = true;
                    lastSequence = -1;
                }
                else if (!p.NextTrip && inNextTrip)
                {
                    _violations.Add($"{where} {vehicleId}: a stop of its current trip after its next trip's");
                }

                ref var tripOf = ref inNextTrip ? ref nextTrip : ref trip;
                tripOf ??= p.TripId;
                if (tripOf != p.TripId)
                {
                    _violations.Add($"{where} {vehicleId}: next stops mix trips {tripOf} and {p.TripId}");
                }

                if (p.StopSequence <= lastSequence)
                {
                    _violations.Add($"{where} {vehicleId}: stop_sequence {p.StopSequence} after {lastSequence} on {p.TripId}");
                }

                if (p.Predicted < lastTime)
                {
                    _violations.Add($"{where} {vehicleId}: {p.StopId} (seq {p.StopSequence}) predicted {p.Predicted:HH:mm:ss}, before the stop ahead of it ({lastTime:HH:mm:ss})");
                }

                lastSequence = p.StopSequence;
                lastTime = p.Predicted;
            }

            if (nextTrip is not null && nextTrip == trip)
            {
                _violations.Add($"{where} {vehicleId}: its next trip is the trip it is on ({trip})");
            }
        }

        private void ApplyPushes()
        {
            var sent = _transport.For("app");
            for (; _appSeen < sent.Count; _appSeen++)
            {
                var (method, payload) = sent[_appSeen];
                if (method == LiveMethods.Predictions)
                {
                    foreach (var p in (List<ArrivalPrediction>)payload)
                    {
                        _appView[new PredictionKey(p.StopId, p.TripId)] = p;
                    }
                }
                else if (method == LiveMethods.Withdrawn)
                {
                    foreach (var w in (List<PredictionWithdrawal>)payload)
                    {
                        _appView.Remove(new PredictionKey(w.StopId, w.TripId));
                    }
                }
            }
        }

        // truth.csv: trip_id,stop_id,stop_sequence,vehicle,arrival,departure (the generator's ground truth).
        private void ReadTruth(string path)
        {
            using var reader = new StreamReader(path);
            var header = reader.ReadLine()!.Split(',');
            int trip = Array.IndexOf(header, "trip_id"), seq = Array.IndexOf(header, "stop_sequence"), dep = Array.IndexOf(header, "departure");
            while (reader.ReadLine() is { } line)
            {
                var cells = line.Split(',');
                _left[(cells[trip], int.Parse(cells[seq], CultureInfo.InvariantCulture))] =
                    DateTime.Parse(cells[dep], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            }
        }

        public async ValueTask DisposeAsync()
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var stopping = Replay.StopAsync(stop.Token);
            // The replay may be waiting on the fake clock: move it so the wait ends.
            while (!stopping.IsCompleted)
            {
                _clock.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(1, CancellationToken.None);
            }

            await stopping;
            Replay.Dispose();
            if (_cluster is not null)
            {
                await _cluster.DisposeAsync();
            }

        }
    }
}
