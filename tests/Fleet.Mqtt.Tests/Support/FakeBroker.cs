using System.Net;
using System.Net.Sockets;

namespace Fleet.Mqtt.Tests.Support;

/// <summary>A received packet as the fake broker decoded it.</summary>
internal sealed record FakePacket(int Type, int Flags, byte[] Body);

/// <summary>
/// A scripted MQTT broker for byte-level protocol tests (modelled on Npgsql's PgServerMock): the test accepts the
/// client, reads what it sends and writes exactly the bytes it wants. Its decoding is written independently of the
/// client's codec. Every wait is bounded and names what was awaited.
/// </summary>
internal sealed class FakeBroker : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TcpListener _listener;
    private Socket? _socket;
    private NetworkStream? _stream;

    private FakeBroker()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
    }

    public Uri Url => new($"mqtt://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    public static FakeBroker Start() => new();

    /// <summary>Accepts the client, reads its CONNECT and answers CONNACK with the given return code.</summary>
    public async Task<FakePacket> AcceptAsync(byte returnCode = 0, bool sessionPresent = false)
    {
        _socket = await _listener.AcceptSocketAsync().WaitAsync(Timeout);
        _stream = new NetworkStream(_socket, ownsSocket: true);
        var connect = await ReadPacketAsync("CONNECT");
        Assert.Equal(1, connect.Type);
        await SendAsync(0x20, 0x02, (byte)(sessionPresent ? 1 : 0), returnCode);
        return connect;
    }

    /// <summary>Closes the client's connection (the listener stays, so the client can reconnect).</summary>
    public async Task DropClientAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
            _stream = null;
        }
    }

    public async Task SendAsync(params byte[] bytes)
    {
        await _stream!.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
    }

    /// <summary>Writes a PUBLISH with the given QoS (0 or 1) and packet id.</summary>
    public Task SendPublishAsync(string topic, byte[] payload, int qos, ushort packetId) =>
        SendAsync(Publish(topic, payload, qos, packetId));

    public static byte[] Publish(string topic, byte[] payload, int qos, ushort packetId)
    {
        var topicBytes = System.Text.Encoding.UTF8.GetBytes(topic);
        var body = new List<byte> { (byte)(topicBytes.Length >> 8), (byte)topicBytes.Length };
        body.AddRange(topicBytes);
        if (qos > 0)
        {
            body.Add((byte)(packetId >> 8));
            body.Add((byte)packetId);
        }

        body.AddRange(payload);
        var packet = new List<byte> { (byte)(0x30 | (qos << 1)) };
        var length = body.Count;
        do
        {
            var b = (byte)(length % 128);
            length /= 128;
            packet.Add(length > 0 ? (byte)(b | 0x80) : b);
        }
        while (length > 0);

        packet.AddRange(body);
        return [.. packet];
    }

    /// <summary>Reads one whole packet the client sent; <paramref name="what"/> names it in the timeout message.</summary>
    public async Task<FakePacket> ReadPacketAsync(string what)
    {
        try
        {
            var first = await ReadExactlyAsync(1);
            var length = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = (await ReadExactlyAsync(1))[0];
                length |= (b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    break;
                }
            }

            var body = await ReadExactlyAsync(length);
            return new FakePacket(first[0] >> 4, first[0] & 0x0F, body);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"fake broker: no {what} from the client within {Timeout.TotalSeconds} s");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
        }

        _listener.Stop();
        _listener.Dispose();
    }

    private async Task<byte[]> ReadExactlyAsync(int count)
    {
        var buffer = new byte[count];
        await _stream!.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeout);
        return buffer;
    }
}
