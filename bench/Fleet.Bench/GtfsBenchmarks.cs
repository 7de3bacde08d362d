using BenchmarkDotNet.Attributes;
using Fleet.Gtfs;
using Fleet.Gtfs.Realtime;

namespace Fleet.Bench;

/// <summary>
/// GTFS static load (NYC subway cut: target under 2 s and 200 MB of heap) and GTFS-RT decode (the 80-snapshot
/// NYC ACE recording: target at least 50 MB/s of protobuf). Needs ../shared/data (or FLEET_SHARED_DATA).
/// </summary>
[MemoryDiagnoser]
public class GtfsBenchmarks
{
    private byte[][] _snapshots = [];

    /// <summary>Total protobuf bytes of the 80 snapshots (for MB/s: bytes / mean time).</summary>
    public long SnapshotBytes { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        var folder = Path.Combine(SharedDataRoot(), "gtfs-rt", "nyct-subway-ACE_2024-02-08_80x60s");
        _snapshots = [.. Directory.GetFiles(folder, "*.pb").Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];
        SnapshotBytes = _snapshots.Sum(s => (long)s.Length);
        Console.WriteLine($"// NYC ACE snapshots: {_snapshots.Length} files, {SnapshotBytes} bytes");
    }

    [Benchmark]
    public int LoadNycSubway() =>
        GtfsLoader.Load(Path.Combine(SharedDataRoot(), "gtfs-static", "nyct-subway_oba-cut_2024-03.zip")).StopTimeCount;

    [Benchmark]
    public int DecodeNycRecording()
    {
        var entities = 0;
        foreach (var bytes in _snapshots)
        {
            entities += GtfsRtDecoder.Decode(bytes).Entity.Count;
        }

        return entities;
    }

    internal static string SharedDataRoot()
    {
        var env = Environment.GetEnvironmentVariable("FLEET_SHARED_DATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
        {
            return env;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("shared/data not found; set FLEET_SHARED_DATA");
    }
}
