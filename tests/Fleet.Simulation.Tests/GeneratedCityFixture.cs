using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Fleet.Simulation.Tests;

/// <summary>One small generated city shared by the tests of a class (generation takes a second or two).</summary>
public sealed class GeneratedCityFixture : IDisposable
{
    public static readonly GenerateOptions SmallCity = new() { City = 3, Seed = 7, Routes = 3, Vehicles = 14, Hours = 1.5 };

    public GeneratedCityFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("fleet-sim-").FullName;
        Summary = CityGenerator.Generate(SmallCity, Directory);
        Lines = ReadRecording(Summary.RecordingPath);
        using var zip = ZipFile.OpenRead(Summary.GtfsPath);
        Gtfs = zip.Entries.ToDictionary(e => e.Name, e => ReadCsv(e.Open()), StringComparer.Ordinal);
        Truth = ReadCsv(File.OpenRead(Summary.TruthPath));
    }

    public string Directory { get; }

    public GenerateSummary Summary { get; }

    public string[] Lines { get; }

    public Dictionary<string, List<Dictionary<string, string>>> Gtfs { get; }

    public List<Dictionary<string, string>> Truth { get; }

    public static string[] ReadRecording(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        var text = reader.ReadToEnd();
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>A plain CSV reader for the generator's own files (no quoted commas in them, checked by the caller).</summary>
    public static List<Dictionary<string, string>> ReadCsv(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var header = reader.ReadLine()!.Split(',');
        var rows = new List<Dictionary<string, string>>();
        while (reader.ReadLine() is { } line)
        {
            var cells = line.Split(',');
            Assert.True(cells.Length == header.Length, $"CSV row has {cells.Length} cells, header {header.Length}: {line}");
            rows.Add(header.Select((h, i) => (h, cells[i])).ToDictionary(x => x.h, x => x.Item2, StringComparer.Ordinal));
        }

        return rows;
    }

    public static int GtfsSeconds(string time)
    {
        var p = time.Split(':');
        return (int.Parse(p[0], CultureInfo.InvariantCulture) * 3600) + (int.Parse(p[1], CultureInfo.InvariantCulture) * 60) + int.Parse(p[2], CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}
