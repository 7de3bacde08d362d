using System.Buffers.Text;
using System.IO.Compression;
using Fleet.Ingest.Text;

namespace Fleet.Ingest.Recording;

/// <summary>
/// Reads a recording: one message a line, <c>&lt;receive time ISO-8601 UTC&gt; &lt;topic&gt; &lt;payload&gt;</c>,
/// plain or gzip (detected from the content, not the name).
/// </summary>
/// <remarks>
/// <para>Topic and payload are split on the first <c>" {"</c> because HFP headsigns contain spaces. A line whose
/// topic starts with <c>gtfs-rt/</c> is a GTFS-Realtime snapshot: topic up to the next space, payload base64, which
/// the reader decodes (in place) and returns as <see cref="RecordKind.GtfsRt"/>.</para>
/// <para>Malformed lines (no readable time, no payload, too long, bad base64) come back as
/// <see cref="RecordKind.Malformed"/> with a <see cref="RejectReason"/>; reading goes on. Blank lines are skipped.
/// The last line needs no newline.</para>
/// <para>Lines are returned as spans into one reused buffer, so reading allocates nothing per line.
/// Not thread-safe.</para>
/// </remarks>
public sealed class RecordingReader : IDisposable
{
    /// <summary>The default longest line accepted (1 MiB).</summary>
    public const int DefaultMaxLineBytes = 1 << 20;

    private static readonly byte[] s_gtfsRtPrefix = "gtfs-rt/"u8.ToArray();

    private readonly Stream _stream;
    private readonly Stream? _file;
    private readonly bool _leaveOpen;
    private readonly int _maxLineBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;
    private bool _first = true;
    private long _lineNumber;

    /// <summary>Reads from <paramref name="stream"/> (already decompressed).</summary>
    public RecordingReader(Stream stream, string sourceName, int maxLineBytes = DefaultMaxLineBytes, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 64);
        _stream = stream;
        SourceName = sourceName;
        _maxLineBytes = maxLineBytes;
        _leaveOpen = leaveOpen;
        _buffer = new byte[Math.Min(64 * 1024, maxLineBytes + 1)];
    }

    private RecordingReader(Stream stream, Stream file, string sourceName, int maxLineBytes)
        : this(stream, sourceName, maxLineBytes)
    {
        _file = file;
    }

    /// <summary>Opens a recording file, gzip or plain.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static RecordingReader Open(string path, int maxLineBytes = DefaultMaxLineBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        try
        {
            return new RecordingReader(IsGzip(file) ? new GZipStream(file, CompressionMode.Decompress) : file, file, path, maxLineBytes);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>True when the stream starts with the gzip magic bytes; the position is restored.</summary>
    public static bool IsGzip(Stream seekable)
    {
        ArgumentNullException.ThrowIfNull(seekable);
        var at = seekable.Position;
        Span<byte> magic = stackalloc byte[2];
        var n = seekable.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        seekable.Position = at;
        return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    /// <summary>The name given for the source (the path for <see cref="Open"/>).</summary>
    public string SourceName { get; }

    /// <summary>The number of the last line read (1-based).</summary>
    public long LineNumber => _lineNumber;

    /// <summary>How far through the file, 0 to 1 (by compressed bytes for gzip); null for streams of unknown length.</summary>
    public double? Progress => _file is { CanSeek: true, Length: > 0 } f ? Math.Min(1.0, (double)f.Position / f.Length) : null;

    /// <summary>Reads the next non-blank line; false at the end of the recording.</summary>
    public bool TryRead(out RecordingLine line)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            int lineStart = _start, lineEnd;
            if (newline >= 0)
            {
                lineEnd = _start + newline;
                _start = lineEnd + 1;
            }
            else if (_end - _start > _maxLineBytes)
            {
                _lineNumber++;
                SkipRestOfLine();
                line = new RecordingLine(RecordKind.Malformed, default, default, default, RejectReason.Oversized, _lineNumber);
                return true;
            }
            else if (!_eof)
            {
                Fill();
                continue;
            }
            else if (_start < _end)
            {
                lineEnd = _end;
                _start = _end;
            }
            else
            {
                line = default;
                return false;
            }

            _lineNumber++;
            var span = _buffer.AsSpan(lineStart, lineEnd - lineStart);
            if (_first)
            {
                _first = false;
                if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
                {
                    span = span[3..];
                }
            }

            if (span.Length > _maxLineBytes)
            {
                line = new RecordingLine(RecordKind.Malformed, default, default, default, RejectReason.Oversized, _lineNumber);
                return true;
            }

            span = span.TrimEnd((ReadOnlySpan<byte>)[(byte)'\r', (byte)' ', (byte)'\t']);
            if (span.IsEmpty)
            {
                continue;
            }

            line = ParseLine(span, _lineNumber);
            return true;
        }
    }

    /// <summary>
    /// Parses one line (without its newline). <paramref name="line"/> must be writable because a GTFS-RT payload is
    /// base64-decoded in place.
    /// </summary>
    public static RecordingLine ParseLine(Span<byte> line, long lineNumber)
    {
        var space = line.IndexOf((byte)' ');
        if (space < 0 || !Iso8601.TryParseUtc(line[..space], out var time))
        {
            // A line with no payload at all reads as truncated rather than as a bad time.
            return new RecordingLine(RecordKind.Malformed, default, default, default,
                space < 0 ? RejectReason.TruncatedLine : RejectReason.BadReceiveTime, lineNumber);
        }

        var rest = line[(space + 1)..];
        if (rest.StartsWith(s_gtfsRtPrefix))
        {
            var sp = rest.IndexOf((byte)' ');
            if (sp < 0)
            {
                return new RecordingLine(RecordKind.Malformed, time, default, default, RejectReason.TruncatedLine, lineNumber);
            }

            var payload = rest[(sp + 1)..].Trim((byte)' ');
            if (Base64.DecodeFromUtf8InPlace(payload, out var written) != System.Buffers.OperationStatus.Done)
            {
                return new RecordingLine(RecordKind.Malformed, time, default, default, RejectReason.BadBase64, lineNumber);
            }

            return new RecordingLine(RecordKind.GtfsRt, time, rest[..sp], payload[..written], RejectReason.None, lineNumber);
        }

        var brace = rest.IndexOf(" {"u8);
        if (brace <= 0)
        {
            return new RecordingLine(RecordKind.Malformed, time, default, default, RejectReason.TruncatedLine, lineNumber);
        }

        return new RecordingLine(RecordKind.Message, time, rest[..brace], rest[(brace + 1)..], RejectReason.None, lineNumber);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
            _file?.Dispose();
        }
    }

    private void Fill()
    {
        // Move the partial line to the front, grow if it fills the buffer, then read more.
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, _maxLineBytes + 2));
        }

        var n = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (n == 0)
        {
            _eof = true;
        }

        _end += n;
    }

    private void SkipRestOfLine()
    {
        // Drop an oversized line without buffering it: discard until its newline.
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                _start += newline + 1;
                return;
            }

            _start = _end = 0;
            if (_eof)
            {
                return;
            }

            Fill();
        }
    }
}
