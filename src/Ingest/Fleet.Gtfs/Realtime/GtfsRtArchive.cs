using System.Formats.Tar;
using System.IO.Compression;

namespace Fleet.Gtfs.Realtime;

/// <summary>One snapshot of a GTFS-Realtime archive: its name inside the archive and its bytes (protobuf or JSON).</summary>
/// <param name="Name">The entry's name (path inside the archive or folder).</param>
/// <param name="Bytes">The snapshot.</param>
public sealed record GtfsRtSnapshotEntry(string Name, byte[] Bytes);

/// <summary>
/// GTFS-Realtime archives as they are shared: a folder of snapshots, a .zip of them, or a .tar.gz (.tgz) of them;
/// each snapshot a FeedMessage in protobuf (.pb, .pbf, .protobuf) or JSON (.json). Entries come in name order (the
/// archives name snapshots by time).
/// </summary>
public static class GtfsRtArchive
{
    /// <summary>The file name endings of a snapshot inside an archive.</summary>
    public static readonly IReadOnlyList<string> SnapshotExtensions = [".pb", ".pbf", ".protobuf", ".json"];

    /// <summary>Whether <paramref name="path"/> is a .tar.gz/.tgz or .zip file (the caller tells a GTFS static zip apart).</summary>
    public static bool IsArchiveFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return File.Exists(path) && (IsTarGz(path) || path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Whether a .zip holds GTFS-Realtime snapshots (and no GTFS static tables).</summary>
    public static bool IsSnapshotZip(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            return zip.Entries.Any(e => IsSnapshotName(e.FullName)) && !zip.Entries.Any(e => e.Name.Equals("stops.txt", StringComparison.OrdinalIgnoreCase));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>
    /// The snapshots of a folder, .zip or .tar.gz, in name order (entries that are not snapshots are skipped).
    /// </summary>
    /// <exception cref="InvalidDataException">A truncated or corrupt archive (the message names the archive).</exception>
    public static IEnumerable<GtfsRtSnapshotEntry> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                .Where(IsSnapshotName)
                .Order(StringComparer.Ordinal)
                .Select(f => new GtfsRtSnapshotEntry(Path.GetRelativePath(path, f), File.ReadAllBytes(f)));
        }

        return IsTarGz(path) ? ReadTarGz(path) : ReadZip(path);
    }

    private static bool IsTarGz(string path) =>
        path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase);

    private static bool IsSnapshotName(string name) =>
        SnapshotExtensions.Any(x => name.EndsWith(x, StringComparison.OrdinalIgnoreCase)) && !Path.GetFileName(name).StartsWith('.');

    // Entries are read into memory one by one and sorted by name (a day of snapshots is tens of MB).
    private static List<GtfsRtSnapshotEntry> ReadTarGz(string path)
    {
        var entries = new List<GtfsRtSnapshotEntry>();
        try
        {
            using var file = File.OpenRead(path);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null || !IsSnapshotName(entry.Name))
                {
                    continue;
                }

                using var bytes = new MemoryStream();
                entry.DataStream.CopyTo(bytes);
                entries.Add(new GtfsRtSnapshotEntry(entry.Name, bytes.ToArray()));
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)}: not a readable .tar.gz ({ex.Message})", ex);
        }

        entries.Sort((a, b) => StringComparer.Ordinal.Compare(a.Name, b.Name));
        return entries;
    }

    private static List<GtfsRtSnapshotEntry> ReadZip(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entries = new List<GtfsRtSnapshotEntry>();
            foreach (var e in zip.Entries.Where(e => IsSnapshotName(e.FullName)).OrderBy(e => e.FullName, StringComparer.Ordinal))
            {
                using var stream = e.Open();
                using var bytes = new MemoryStream();
                stream.CopyTo(bytes);
                entries.Add(new GtfsRtSnapshotEntry(e.FullName, bytes.ToArray()));
            }

            return entries;
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)}: not a readable .zip ({ex.Message})", ex);
        }
    }
}
