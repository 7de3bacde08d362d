using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Fleet.Dashboard.HubClient;

/// <summary>
/// A test client speaking SignalR's JSON hub protocol over a raw WebSocket (no negotiate), for the hub's
/// protocol-level tests: a reader that stops reading, a tiny receive buffer, the server's close message. Fleet's own
/// commands and benches use the official client (<see cref="LiveHubClient"/>).
/// </summary>
/// <remarks>
/// <para>Protocol: after connecting, send <c>{"protocol":"json","version":1}</c> + 0x1E, expect <c>{}</c> + 0x1E.
/// Messages are JSON objects each ended by 0x1E; type 1 is an invocation, 3 a completion, 6 a ping, 7 a close.</para>
/// <para>Pushed messages go into <see cref="Messages"/>, a bounded channel: a reader that does not keep up makes
/// the receive loop wait, which stops reading the socket, so the server sees a slow client. Thread-safety:
/// <see cref="InvokeAsync"/> may be called concurrently; sends are serialised.</para>
/// </remarks>
public sealed class SignalRJsonClient : IAsyncDisposable
{
    private const byte RecordSeparator = 0x1e;
    private readonly WebSocket _socket;
    private readonly Channel<HubMessage> _messages;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonElement?>> _pending = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly ArrayBufferWriter<byte> _buffer = new();
    private Task _receiveLoop = Task.CompletedTask;
    private Task _pingLoop = Task.CompletedTask;
    private int _nextId;

    private SignalRJsonClient(WebSocket socket, int capacity)
    {
        _socket = socket;
        _messages = Channel.CreateBounded<HubMessage>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = false,
            SingleWriter = true,
        });
    }

    /// <summary>Pushed messages, in arrival order. Completes when the connection closes.</summary>
    public ChannelReader<HubMessage> Messages => _messages.Reader;

    /// <summary>Why the connection closed (the server's close message error or a socket error), when it did.</summary>
    public string? CloseReason { get; private set; }

    /// <summary>The WebSocket URL of a hub: http(s) becomes ws(s); the key goes in <c>access_token</c>.</summary>
    public static Uri HubUri(Uri baseUrl, string hubPath, string? accessToken)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var builder = new UriBuilder(new Uri(baseUrl, hubPath))
        {
            Scheme = baseUrl.Scheme == Uri.UriSchemeHttps || baseUrl.Scheme == "wss" ? "wss" : "ws",
        };
        if (!string.IsNullOrEmpty(accessToken))
        {
            builder.Query = "access_token=" + Uri.EscapeDataString(accessToken);
        }

        return builder.Uri;
    }

    /// <summary>Connects and completes the handshake.</summary>
    /// <param name="hubUri">The hub's WebSocket URI (see <see cref="HubUri"/>).</param>
    /// <param name="capacity">How many pushed messages may wait unread before the socket stops being read.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    public static async Task<SignalRJsonClient> ConnectAsync(Uri hubUri, int capacity = 1024, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hubUri);
        var ws = new ClientWebSocket();
        try
        {
            await ws.ConnectAsync(hubUri, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ws.Dispose();
            throw;
        }

        return await StartAsync(ws, capacity, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes the handshake on an already connected WebSocket and starts receiving.</summary>
    public static async Task<SignalRJsonClient> StartAsync(WebSocket socket, int capacity = 1024, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var client = new SignalRJsonClient(socket, capacity);
        try
        {
            await client.SendRawAsync("{\"protocol\":\"json\",\"version\":1}"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            var handshake = await client.ReadRecordAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new IOException("the server closed the connection during the SignalR handshake");
            using (var doc = JsonDocument.Parse(handshake))
            {
                if (doc.RootElement.TryGetProperty("error", out var error))
                {
                    throw new IOException($"SignalR handshake refused: {error.GetString()}");
                }
            }

            client._receiveLoop = client.ReceiveLoopAsync();
            client._pingLoop = client.PingLoopAsync();
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Invokes a hub method and returns its result (null for void); throws <see cref="HubErrorException"/> on a hub error.</summary>
    public async Task<JsonElement?> InvokeAsync(string target, object?[] arguments, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(arguments);
        var id = Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tcs = new TaskCompletionSource<JsonElement?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        var json = JsonSerializer.SerializeToUtf8Bytes(new { type = 1, invocationId = id, target, arguments });
        try
        {
            await SendRawAsync(json, cancellationToken).ConfigureAwait(false);
            using var reg = cancellationToken.Register(() => tcs.TrySetCanceled(cancellationToken));
            return await tcs.Task.ConfigureAwait(false);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task SendRawAsync(byte[] json, CancellationToken cancellationToken)
    {
        var frame = new byte[json.Length + 1];
        json.CopyTo(frame, 0);
        frame[^1] = RecordSeparator;
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Text, true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    // Reads until one complete record is buffered; returns it (without the separator), or null at close.
    private async Task<byte[]?> ReadRecordAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var written = _buffer.WrittenSpan;
            var end = written.IndexOf(RecordSeparator);
            if (end >= 0)
            {
                var record = written[..end].ToArray();
                var rest = written[(end + 1)..].ToArray();
                _buffer.ResetWrittenCount();
                _buffer.Write(rest);
                return record;
            }

            var memory = _buffer.GetMemory(16 * 1024);
            var result = await _socket.ReceiveAsync(memory, cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            _buffer.Advance(result.Count);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var ct = _stop.Token;
        try
        {
            while (await ReadRecordAsync(ct).ConfigureAwait(false) is { } record)
            {
                if (!await DispatchAsync(record, ct).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (ct.IsCancellationRequested)
        {
            // DisposeAsync aborted the socket under a pending receive.
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or JsonException)
        {
            CloseReason ??= ex.Message;
        }
        finally
        {
            _messages.Writer.TryComplete();
            foreach (var tcs in _pending.Values)
            {
                tcs.TrySetException(new IOException("connection closed: " + (CloseReason ?? "by the server")));
            }
        }
    }

    private async Task<bool> DispatchAsync(byte[] record, CancellationToken ct)
    {
        using var doc = JsonDocument.Parse(record);
        var root = doc.RootElement;
        switch (root.GetProperty("type").GetInt32())
        {
            case 1:
                var target = root.GetProperty("target").GetString() ?? string.Empty;
                var args = root.TryGetProperty("arguments", out var a) ? [.. a.EnumerateArray().Select(e => e.Clone())] : Array.Empty<JsonElement>();
                await _messages.Writer.WriteAsync(new HubMessage(target, args, DateTime.UtcNow), ct).ConfigureAwait(false);
                return true;
            case 3:
                var id = root.GetProperty("invocationId").GetString() ?? string.Empty;
                if (_pending.TryGetValue(id, out var tcs))
                {
                    if (root.TryGetProperty("error", out var error))
                    {
                        tcs.TrySetException(new HubErrorException(error.GetString() ?? "hub error"));
                    }
                    else
                    {
                        tcs.TrySetResult(root.TryGetProperty("result", out var r) ? r.Clone() : null);
                    }
                }

                return true;
            case 7:
                CloseReason = root.TryGetProperty("error", out var reason) ? reason.GetString() : "closed by the server";
                return false;
            default:
                // 6 = ping; anything else this client does not use.
                return true;
        }
    }

    private async Task PingLoopAsync()
    {
        // The server drops a client it has not heard from for 30 s; a ping every 10 s keeps an idle one alive.
        var ping = "{\"type\":6}"u8.ToArray();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(10), _stop.Token).ConfigureAwait(false);
                await SendRawAsync(ping, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }

        _socket.Abort();
        await Task.WhenAll(_receiveLoop, _pingLoop).ConfigureAwait(false);
        _socket.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
    }
}

/// <summary>The hub answered an invocation with an error.</summary>
public sealed class HubErrorException : Exception
{
    /// <summary>Creates the exception.</summary>
    public HubErrorException()
    {
    }

    /// <summary>Creates the exception with the hub's message.</summary>
    public HubErrorException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with an inner one.</summary>
    public HubErrorException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
