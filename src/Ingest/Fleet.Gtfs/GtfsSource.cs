using System.IO.Compression;
using System.Text;

namespace Fleet.Gtfs;

/// <summary>Where the GTFS text files come from: a zip archive or a folder.</summary>
/// <remarks>Not thread-safe; the loader uses one source on one thread and disposes it.</remarks>
internal abstract class GtfsSource : IDisposable
{
    public abstract string Description { get; }

    public static GtfsSource Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            return new FolderSource(path);
        }

        if (File.Exists(path))
        {
            try
            {
                return new ZipSource(path);
            }
            catch (InvalidDataException ex)
            {
                throw new GtfsFormatException($"'{path}' is not a GTFS zip archive: {ex.Message}", ex);
            }
        }

        throw new GtfsFormatException($"GTFS feed '{path}' not found (expected a .zip file or a folder)");
    }

    public abstract bool Exists(string fileName);

    /// <summary>The file's text (UTF-8, BOM removed), or null when absent.</summary>
    public abstract string? ReadText(string fileName);

    public virtual void Dispose()
    {
    }

    protected static string Decode(byte[] bytes, int length)
    {
        var span = bytes.AsSpan(0, length);
        if (span.StartsWith(Encoding.UTF8.Preamble))
        {
            span = span[3..];
        }

        return Encoding.UTF8.GetString(span);
    }

    private sealed class FolderSource(string folder) : GtfsSource
    {
        public override string Description => folder;

        public override bool Exists(string fileName) => File.Exists(Path.Combine(folder, fileName));

        public override string? ReadText(string fileName)
        {
            var path = Path.Combine(folder, fileName);
            if (!File.Exists(path))
            {
                return null;
            }

            var bytes = File.ReadAllBytes(path);
            return Decode(bytes, bytes.Length);
        }
    }

    private sealed class ZipSource : GtfsSource
    {
        private readonly ZipArchive _zip;
        private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.OrdinalIgnoreCase);

        public ZipSource(string path)
        {
            Description = path;
            _zip = ZipFile.OpenRead(path);
            // Files at the root win; a feed zipped inside one folder is accepted too.
            foreach (var entry in _zip.Entries.OrderBy(e => e.FullName.Count(c => c == '/')))
            {
                if (entry.Name.Length > 0)
                {
                    _entries.TryAdd(entry.Name, entry);
                }
            }
        }

        public override string Description { get; }

        public override bool Exists(string fileName) => _entries.ContainsKey(fileName);

        public override string? ReadText(string fileName)
        {
            if (!_entries.TryGetValue(fileName, out var entry))
            {
                return null;
            }

            var length = checked((int)entry.Length);
            var buffer = new byte[length];
            using var stream = entry.Open();
            stream.ReadExactly(buffer, 0, length);
            return Decode(buffer, length);
        }

        public override void Dispose()
        {
            _zip.Dispose();
            base.Dispose();
        }
    }
}
