using System.IO.Compression;

namespace Fleet.Simulation.Output;

/// <summary>
/// A write-only stream that gzips in fixed-size chunks on worker threads and writes the results, in order, as
/// consecutive gzip members (RFC 1952 allows several; <see cref="GZipStream"/>, zcat and Python read them as one).
/// </summary>
/// <remarks>
/// Output is deterministic: chunk boundaries depend only on the byte count, and every member uses the same zlib
/// level. At most <c>maxInFlight</c> chunks are compressing at once, so memory stays bounded and the producer slows
/// down when compression cannot keep up. Not thread-safe for concurrent writers.
/// </remarks>
public sealed class ParallelGzipStream : Stream
{
    private readonly Stream _inner;
    private readonly int _chunkSize;
    private readonly int _level;
    private readonly int _maxInFlight;
    private readonly Queue<(Task<MemoryStream> Member, byte[] Chunk)> _inFlight = new();

    // Reused (touched by the writing thread only, and by a worker only while its task runs): a chunk of 4 MB and its
    // compressed member are large-object-heap arrays, and allocating two of them per chunk made the GC a large share
    // of the generator's CPU time.
    private readonly Stack<byte[]> _freeChunks = new();
    private readonly Stack<MemoryStream> _freeMembers = new();
    private byte[] _chunk;
    private int _length;
    private bool _disposed;

    /// <summary>Wraps <paramref name="inner"/> (disposed with this stream).</summary>
    public ParallelGzipStream(Stream inner, int level, int chunkSize = 4 << 20, int maxInFlight = 4)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1024);
        _inner = inner;
        _level = level;
        _chunkSize = chunkSize;
        _maxInFlight = Math.Max(1, maxInFlight);
        _chunk = new byte[chunkSize];
    }

    /// <inheritdoc />
    public override bool CanRead => false;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => !_disposed;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, _chunkSize - _length);
            buffer[..n].CopyTo(_chunk.AsSpan(_length));
            _length += n;
            buffer = buffer[n..];
            if (_length == _chunkSize)
            {
                Submit();
            }
        }
    }

    /// <inheritdoc />
    public override void Flush()
    {
        // Chunks are fixed-size on purpose (determinism); Flush only pushes finished members to the inner stream.
        while (_inFlight.Count > 0 && _inFlight.Peek().Member.IsCompleted)
        {
            WriteOldest();
        }

        _inner.Flush();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            if (_length > 0)
            {
                Submit();
            }

            while (_inFlight.Count > 0)
            {
                WriteOldest();
            }

            _disposed = true;
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Submit()
    {
        var data = _chunk;
        var length = _length;
        var level = _level;
        var member = _freeMembers.Count > 0 ? _freeMembers.Pop() : new MemoryStream((_chunkSize / 4) + 1024);
        member.SetLength(0);
        _inFlight.Enqueue((Task.Run(() => Compress(data, length, level, member)), data));
        _chunk = _freeChunks.Count > 0 ? _freeChunks.Pop() : new byte[_chunkSize];
        _length = 0;
        while (_inFlight.Count >= _maxInFlight)
        {
            WriteOldest();
        }
    }

    private void WriteOldest()
    {
        var (task, chunk) = _inFlight.Dequeue();
        var member = task.GetAwaiter().GetResult();
        _inner.Write(member.GetBuffer(), 0, (int)member.Length);
        _freeChunks.Push(chunk);
        _freeMembers.Push(member);
    }

    private static MemoryStream Compress(byte[] data, int length, int level, MemoryStream output)
    {
        using (var gzip = new GZipStream(output, new ZLibCompressionOptions { CompressionLevel = level, CompressionStrategy = ZLibCompressionStrategy.Default }, leaveOpen: true))
        {
            gzip.Write(data, 0, length);
        }

        return output;
    }
}
