using Fleet.Actors.Partitions;
using Fleet.Gtfs;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Testing;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Partitions;
using Fleet.Tracking.Schedule;

namespace Fleet.Actors.Tests;

/// <summary>The sample city's first lines as partition batches (line numbers as sequences), and plain tracking of them.</summary>
internal static class SampleBatches
{
    private static readonly Lazy<GtfsTripCatalog> s_catalog = new(() => new GtfsTripCatalog(GtfsLoader.Load(Path.Combine(RepoPaths.SampleData, "gtfs.zip"))));

    public static GtfsTripCatalog Catalog => s_catalog.Value;

    /// <summary>The first <paramref name="lines"/> lines cut into batches of <paramref name="perBatch"/> lines, split by partition.</summary>
    public static List<TrackBatch> Read(int partitions, int lines, int perBatch)
    {
        var stream = new HfpStream();
        var batches = new List<TrackBatch>();
        var pending = Enumerable.Range(0, partitions).Select(_ => (Events: new List<VehicleEvent>(), Sequences: new List<long>())).ToArray();
        var clock = DateTime.MinValue;
        using var reader = RecordingReader.Open(Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"));
        for (var n = 1L; n <= lines && reader.TryRead(out var line); n++)
        {
            if (stream.Process(line, out var e) == HfpOutcome.Event && !string.IsNullOrEmpty(e.VehicleId))
            {
                var p = VehiclePartition.PartitionOf(e.VehicleId, partitions);
                pending[p].Events.Add(e);
                pending[p].Sequences.Add(n);
                clock = e.ReceiveTime > clock ? e.ReceiveTime : clock;
            }

            if (n % perBatch == 0 || n == lines)
            {
                for (var p = 0; p < partitions; p++)
                {
                    batches.Add(new TrackBatch(p, [.. pending[p].Events], [.. pending[p].Sequences], clock));
                    pending[p].Events.Clear();
                    pending[p].Sequences.Clear();
                }
            }
        }

        return batches;
    }

    /// <summary>What plain tracking (no actors) derives from each batch of one partition.</summary>
    public static List<DerivedEvent[]> TrackPlain(IEnumerable<TrackBatch> batches) => TrackPlain(batches, out _);

    /// <summary>As <see cref="TrackPlain(IEnumerable{TrackBatch})"/>, with the partition's drop counters at the end.</summary>
    public static List<DerivedEvent[]> TrackPlain(IEnumerable<TrackBatch> batches, out TrackingDrops drops)
    {
        var partition = new VehiclePartition(Catalog, new TrackingOptions());
        var result = new List<DerivedEvent[]>();
        foreach (var b in batches)
        {
            var output = new ListOutput();
            partition.Track(b.Events, b.Sequences, b.Clock, output);
            result.Add([.. output.Events]);
        }

        drops = partition.Drops();
        return result;
    }
}
