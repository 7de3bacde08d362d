namespace Fleet.Dashboard.Cli;

/// <summary>The kinds of input file the CLI understands.</summary>
internal enum InputFileKind
{
    /// <summary>A recording: <c>&lt;time&gt; &lt;topic&gt; &lt;payload&gt;</c> lines (HFP and GTFS-RT snapshots), plain or gzip.</summary>
    Recording,

    /// <summary>HFP payload fields as CSV columns.</summary>
    HfpCsv,

    /// <summary>A GTFS static feed (zip).</summary>
    GtfsZip,

    /// <summary>A GTFS-Realtime protobuf message.</summary>
    GtfsRt,
}

/// <summary>Decides what a file is: the one place commands dispatch on file kind.</summary>
internal static class InputFiles
{
    /// <summary>Classifies <paramref name="path"/> by its name and, for ambiguous names, its first bytes.</summary>
    public static InputFileKind Detect(string path)
    {
        var name = Path.GetFileName(path).ToUpperInvariant();
        if (name.EndsWith(".CSV", StringComparison.Ordinal) || name.EndsWith(".CSV.GZ", StringComparison.Ordinal))
        {
            return InputFileKind.HfpCsv;
        }

        if (name.EndsWith(".ZIP", StringComparison.Ordinal) || StartsWith(path, "PK"u8))
        {
            return InputFileKind.GtfsZip;
        }

        if (name.EndsWith(".PB", StringComparison.Ordinal) || name.EndsWith(".PBF", StringComparison.Ordinal)
            || name.EndsWith(".PROTOBUF", StringComparison.Ordinal))
        {
            return InputFileKind.GtfsRt;
        }

        return InputFileKind.Recording;
    }

    private static bool StartsWith(string path, ReadOnlySpan<byte> magic)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> head = stackalloc byte[magic.Length];
            return f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head.SequenceEqual(magic);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
