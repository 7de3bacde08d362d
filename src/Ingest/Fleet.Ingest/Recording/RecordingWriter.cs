using System.Buffers;
using System.Buffers.Text;
using System.IO.Compression;
using System.Text;
using Fleet.Ingest.Text;

namespace Fleet.Ingest.Recording;

/// <summary>
/// Writes a recording in the format <see cref="RecordingReader"/> reads: <c>&lt;receive time&gt; &lt;topic&gt; &lt;payload&gt;</c>,
/// one message a line, the time as <c>yyyy-MM-ddTHH:mm:ss.ffffffZ</c>; gzip when the path ends in <c>.gz</c>.
/// </summary>
/// <remarks>
/// <para>JSON payloads have CR/LF replaced by spaces (outside strings they are only whitespace; inside strings JSON
/// requires them escaped), so one message stays one line. GTFS-RT snapshots are written base64 under the topic
/// <c>gtfs-rt/&lt;feed&gt;</c>.</para>
/// <para>Not thread-safe. Dispose (or <see cref="Flush"/>) to get everything onto disk; a gzip file is complete only
/// after dispose.</para>
/// </remarks>
public sealed class RecordingWriter : IDisposable, IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _used;
    private long _messages;

    /// <summary>Writes to <paramref name="stream"/>, compressing with gzip when <paramref name="gzip"/> is true.</summary>
    public RecordingWriter(Stream stream, bool gzip, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = gzip ? new GZipStream(stream, CompressionLevel.Optimal, leaveOpen) : stream;
        _leaveOpen = leaveOpen && !gzip;
    }

    /// <summary>Creates (or truncates) a recording file; gzip when the name ends in <c>.gz</c>.</summary>
    public static RecordingWriter Create(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1);
        return new RecordingWriter(file, path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Messages written so far.</summary>
    public long MessagesWritten => _messages;

    /// <summary>Writes an MQTT message whose payload is a JSON object.</summary>
    /// <exception cref="ArgumentException">The topic is empty, holds a newline or <c>" {"</c>, or starts with <c>gtfs-rt/</c>;
    /// or the payload is not a JSON object (does not start with <c>{</c>).</exception>
    public void Write(DateTime receiveTime, ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload)
    {
        if (topic.IsEmpty || topic.IndexOfAny((byte)'\n', (byte)'\r') >= 0 || topic.IndexOf(" {"u8) >= 0 || topic.StartsWith("gtfs-rt/"u8))
        {
            throw new ArgumentException("The topic must be non-empty, one line, without \" {\" and not under gtfs-rt/.", nameof(topic));
        }

        var trimmed = payload.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != '{')
        {
            throw new ArgumentException("The payload must be a JSON object.", nameof(payload));
        }

        WriteTimeAndTopic(receiveTime, topic);
        var start = _used;
        Append(trimmed);
        // Appended bytes may have been flushed already if the payload was larger than the buffer; only the part
        // still in the buffer is patched, and a payload larger than the buffer is patched before appending.
        if (start + trimmed.Length == _used)
        {
            ReplaceNewlines(_buffer.AsSpan(start, trimmed.Length));
        }

        Append("\n"u8);
        _messages++;
    }

    /// <summary>Writes an MQTT message with a string topic.</summary>
    public void Write(DateTime receiveTime, string topic, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(topic);
        var max = Encoding.UTF8.GetMaxByteCount(topic.Length);
        var rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var n = Encoding.UTF8.GetBytes(topic, rented);
            Write(receiveTime, rented.AsSpan(0, n), payload);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Writes a GTFS-Realtime snapshot (the raw protobuf bytes) under the topic <c>gtfs-rt/&lt;feed&gt;</c>.</summary>
    /// <exception cref="ArgumentException">The feed name is empty or holds whitespace.</exception>
    public void WriteGtfsRt(DateTime receiveTime, string feed, ReadOnlySpan<byte> protobuf)
    {
        ArgumentException.ThrowIfNullOrEmpty(feed);
        if (feed.AsSpan().IndexOfAny(" \t\r\n") >= 0)
        {
            throw new ArgumentException("The feed name must not contain whitespace.", nameof(feed));
        }

        WriteTimeAndTopic(receiveTime, Encoding.UTF8.GetBytes("gtfs-rt/" + feed));
        var rented = ArrayPool<byte>.Shared.Rent(Base64.GetMaxEncodedToUtf8Length(protobuf.Length));
        try
        {
            Base64.EncodeToUtf8(protobuf, rented, out _, out var written);
            Append(rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        Append("\n"u8);
        _messages++;
    }

    /// <summary>Pushes buffered lines to the underlying stream (and the gzip encoder's current block).</summary>
    public void Flush()
    {
        FlushBuffer();
        _stream.Flush();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        FlushBuffer();
        if (_leaveOpen)
        {
            _stream.Flush();
        }
        else
        {
            _stream.Dispose();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_used > 0)
        {
            await _stream.WriteAsync(_buffer.AsMemory(0, _used)).ConfigureAwait(false);
            _used = 0;
        }

        if (_leaveOpen)
        {
            await _stream.FlushAsync().ConfigureAwait(false);
        }
        else
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void WriteTimeAndTopic(DateTime receiveTime, ReadOnlySpan<byte> topic)
    {
        Span<byte> time = stackalloc byte[Iso8601.FormattedLength];
        Iso8601.FormatUtc(receiveTime, time);
        Append(time);
        Append(" "u8);
        Append(topic);
        Append(" "u8);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _buffer.Length - _used)
        {
            FlushBuffer();
            if (bytes.Length > _buffer.Length)
            {
                // Larger than the buffer: patch a copy, then write it straight through.
                var copy = bytes.ToArray();
                ReplaceNewlines(copy);
                _stream.Write(copy);
                return;
            }
        }

        bytes.CopyTo(_buffer.AsSpan(_used));
        _used += bytes.Length;
    }

    private static void ReplaceNewlines(Span<byte> bytes)
    {
        int i;
        while ((i = bytes.IndexOfAny((byte)'\r', (byte)'\n')) >= 0)
        {
            bytes[i] = (byte)' ';
            bytes = bytes[(i + 1)..];
        }
    }

    private void FlushBuffer()
    {
        if (_used > 0)
        {
            _stream.Write(_buffer, 0, _used);
            _used = 0;
        }
    }
}
