using Fleet.Gtfs;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;

namespace Fleet.Predict.Offline;

/// <summary>Reads recorded days for training and evaluation: HFP recordings replayed against a schedule.</summary>
public static class RecordedDays
{
    /// <summary>
    /// Reads each recording (paired in order with a truth.csv when given; without, arrivals are detected from the HFP
    /// stop events) into a replay day; writes one summary line per day to <paramref name="log"/>.
    /// </summary>
    /// <param name="schedule">The static schedule the recordings run on.</param>
    /// <param name="recordings">HFP recordings (.txt or .gz), one day each.</param>
    /// <param name="truths">truth.csv per recording, same order, or empty.</param>
    /// <param name="options">Prediction-point options.</param>
    /// <param name="progress">Called with the fraction read; may be null.</param>
    /// <param name="log">Where the summaries go; may be null.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    public static List<ReplayDay> ReadHfp(
        Schedule schedule, IReadOnlyList<string> recordings, IReadOnlyList<string> truths, ReplayOptions options,
        Action<double>? progress, TextWriter? log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(recordings);
        ArgumentNullException.ThrowIfNull(truths);
        if (truths.Count > 0 && truths.Count != recordings.Count)
        {
            throw new ArgumentException($"{recordings.Count} recording(s) but {truths.Count} truth file(s)", nameof(truths));
        }

        var days = new List<ReplayDay>();
        for (var i = 0; i < recordings.Count; i++)
        {
            var replay = new OfflineReplay(schedule, options);
            var stream = new HfpStream();
            using (var reader = RecordingReader.Open(recordings[i]))
            {
                while (reader.TryRead(out var line))
                {
                    if (stream.Process(line, out var ev) == HfpOutcome.Event)
                    {
                        replay.Add(ev);
                    }

                    if ((reader.LineNumber & 0x3FFF) == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        if (progress is not null && reader.Progress is { } p)
                        {
                            progress((i + p) / recordings.Count);
                        }
                    }
                }
            }

            replay.FinishDetection();
            ActualStopTimes actuals;
            string source;
            if (truths.Count > 0)
            {
                actuals = ActualStopTimes.ReadTruthCsv(truths[i], schedule);
                source = Path.GetFileName(truths[i]);
            }
            else
            {
                actuals = replay.Detected;
                source = "arrivals detected from HFP stop events";
            }

            log?.WriteLine(
                $"{Path.GetFileName(recordings[i])}: {stream.Messages:N0} messages, {replay.Samples:N0} prediction points, {replay.UnmatchedTrip:N0} events without a schedule trip; " +
                $"ground truth from {source}: {actuals.Trips.Count:N0} trips, {actuals.Accepted:N0} stop times" +
                (actuals.Rejections.Count > 0 ? $", rejected {string.Join(", ", actuals.Rejections.Select(r => $"{r.Key} {r.Value:N0}"))}" : string.Empty));
            days.Add(new ReplayDay(replay, actuals));
        }

        progress?.Invoke(1);
        return days;
    }
}
