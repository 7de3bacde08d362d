using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Util;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;

namespace Fleet.Ingest.Streams;

/// <summary>A vehicle event read from a recording: its line number (a sequence number per recording) and the line's
/// recorded receive time.</summary>
/// <param name="Event">The parsed event.</param>
/// <param name="Line">Its line number in the recording, from 1.</param>
/// <param name="Recorded">The line's recorded receive time, UTC.</param>
public readonly record struct RecordedEvent(VehicleEvent Event, long Line, DateTime Recorded);

/// <summary>A line of a recording with a receive time, parsed: what a replay paces and applies.</summary>
/// <param name="Line">Its line number in the recording, from 1.</param>
/// <param name="Recorded">The line's recorded receive time, UTC.</param>
/// <param name="Outcome">What the parser made of it (an event, a GTFS-RT snapshot, or a refusal counted by reason).</param>
/// <param name="Event">The event when <see cref="Outcome"/> is <see cref="HfpOutcome.Event"/>.</param>
/// <param name="GtfsRt">The snapshot's protobuf bytes when <see cref="Outcome"/> is <see cref="HfpOutcome.GtfsRt"/>.</param>
/// <param name="Progress">The fraction of the file read once this line was (0 to 1).</param>
public sealed record RecordedLine(long Line, DateTime Recorded, HfpOutcome Outcome, VehicleEvent Event, byte[]? GtfsRt, double Progress);

/// <summary>Recordings (HSL dump lines, plain or gzip) as Akka.Streams sources, and their pacing as a flow.</summary>
public static class RecordingSources
{
    /// <summary>
    /// The recording's HFP events in file order, from the line after <paramref name="afterLine"/>: each line parsed by
    /// <paramref name="hfp"/> (malformed lines and refused messages counted there by reason, and skipped; GTFS-RT lines
    /// and lines without a receive time skipped). The file is opened when the source starts and closed when it stops (at its end, or cancelled downstream); it is
    /// read on Akka.Streams' blocking-IO dispatcher.
    /// </summary>
    /// <param name="path">The recording.</param>
    /// <param name="hfp">The parser with its counters; used by this source only.</param>
    /// <param name="afterLine">Lines up to and including this one are skipped (0: from the start).</param>
    public static Source<RecordedEvent, NotUsed> Events(string path, HfpStream hfp, long afterLine = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(hfp);
        return Source.UnfoldResource<RecordedEvent, Cursor>(
            () => new Cursor(path, hfp, 0),
            cursor => cursor.NextEvent(afterLine) is { } e ? Option<RecordedEvent>.Create(e) : Option<RecordedEvent>.None,
            cursor => cursor.Dispose());
    }

    /// <summary>
    /// Every line of the recording that has a receive time, parsed by <paramref name="hfp"/> (malformed lines counted
    /// there by reason and skipped), from the first line at or past <paramref name="fromPosition"/> of the file: what
    /// a replay with a position slider reads. The file is opened when the source starts and closed when it stops (at its
    /// end, or cancelled downstream, as by a seek); it is read in the graph's own island (a local file, read ahead a
    /// little), so that a replay stepped by a clock reads in step with it.
    /// </summary>
    /// <param name="path">The recording.</param>
    /// <param name="hfp">The parser with its counters; used by this source only.</param>
    /// <param name="fromPosition">A fraction of the file, 0 (its start) to 1; the lines before it are skipped, uncounted.</param>
    public static Source<RecordedLine, NotUsed> Lines(string path, HfpStream hfp, double fromPosition = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(hfp);
        ArgumentOutOfRangeException.ThrowIfNegative(fromPosition);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fromPosition, 1);
        return Source.UnfoldResource<RecordedLine, Cursor>(
            () => new Cursor(path, hfp, fromPosition),
            cursor => cursor.NextLine() is { } line ? Option<RecordedLine>.Create(line) : Option<RecordedLine>.None,
            cursor => cursor.Dispose())
            // Fused with the steps that follow (not on the blocking-IO dispatcher): a replay stepped by a clock stays in step.
            .WithAttributes(Attributes.CreateName("recordingLines"));
    }

    /// <summary>
    /// Paces recorded events to the wall clock at <paramref name="speed"/> times real time: the first event passes at
    /// once, each later one when its recorded time (relative to the first) divided by the speed has elapsed.
    /// </summary>
    /// <param name="speed">Times real time (greater than 0; <see cref="double.PositiveInfinity"/> for no pacing).</param>
    /// <param name="time">The wall clock.</param>
    public static Flow<RecordedEvent, RecordedEvent, NotUsed> Paced(double speed, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(speed);
        ArgumentNullException.ThrowIfNull(time);
        return Flow.Create<RecordedEvent>()
            .StatefulSelectMany(() =>
            {
                // Each materialisation anchors on its own first event.
                var anchorRecorded = DateTime.MinValue;
                var anchorWall = DateTimeOffset.MinValue;
                return (Func<RecordedEvent, IEnumerable<(RecordedEvent Event, DateTimeOffset Due)>>)(e =>
                {
                    if (anchorRecorded == DateTime.MinValue)
                    {
                        anchorRecorded = e.Recorded;
                        anchorWall = time.GetUtcNow();
                    }

                    return [(e, anchorWall + ((e.Recorded - anchorRecorded) / speed))];
                });
            })
            .SelectAsync(1, async x =>
            {
                var wait = x.Due - time.GetUtcNow();
                if (wait > TimeSpan.FromMilliseconds(5))
                {
                    await Task.Delay(wait, time).ConfigureAwait(false);
                }

                return x.Event;
            });
    }

    // One open recording: the reader, its line number, and where reading starts.
    private sealed class Cursor(string path, HfpStream hfp, double fromPosition) : IDisposable
    {
        private readonly RecordingReader _reader = RecordingReader.Open(path);
        private long _line;
        private bool _skipping = fromPosition > 0;

        // The next HFP event after line afterLine; null at the end.
        public RecordedEvent? NextEvent(long afterLine)
        {
            while (_reader.TryRead(out var line))
            {
                _line++;
                if (_line <= afterLine)
                {
                    continue;
                }

                var recorded = line.ReceiveTime;
                if (hfp.Process(line, out var ev) == HfpOutcome.Event && recorded != default)
                {
                    return new RecordedEvent(ev, _line, recorded);
                }
            }

            return null;
        }

        // The next line with a receive time at or past fromPosition; null at the end.
        public RecordedLine? NextLine()
        {
            while (_reader.TryRead(out var line))
            {
                _line++;
                if (_skipping)
                {
                    if ((_reader.Progress ?? 1) < fromPosition)
                    {
                        continue;
                    }

                    _skipping = false;
                }

                if (line.Kind == RecordKind.Malformed)
                {
                    hfp.Process(line, out _); // counted by reason, never silently dropped
                    continue;
                }

                if (line.ReceiveTime == default)
                {
                    continue;
                }

                var outcome = hfp.Process(line, out var ev);
                return new RecordedLine(_line, line.ReceiveTime, outcome, ev,
                    outcome == HfpOutcome.GtfsRt ? line.Payload.ToArray() : null, _reader.Progress ?? 0);
            }

            return null;
        }

        public void Dispose() => _reader.Dispose();
    }
}
