using System.Buffers;
using Fleet.Mqtt.Internal;
using Fleet.Mqtt.Tests.Support;

namespace Fleet.Mqtt.Tests;

public sealed class MqttCodecTests
{
    // Boundaries and encodings from MQTT 3.1.1 section 2.2.3, table 2.4 (digits per remaining-length size).
    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(127, new byte[] { 0x7F })]
    [InlineData(128, new byte[] { 0x80, 0x01 })]
    [InlineData(16_383, new byte[] { 0xFF, 0x7F })]
    [InlineData(16_384, new byte[] { 0x80, 0x80, 0x01 })]
    [InlineData(2_097_151, new byte[] { 0xFF, 0xFF, 0x7F })]
    [InlineData(2_097_152, new byte[] { 0x80, 0x80, 0x80, 0x01 })]
    [InlineData(268_435_455, new byte[] { 0xFF, 0xFF, 0xFF, 0x7F })]
    public void VarInt_SpecTableValues_EncodeAndDecodeExactly(int value, byte[] expected)
    {
        var buffer = new byte[4];
        var written = MqttCodec.WriteVarInt(buffer, value);

        Assert.Equal(expected, buffer[..written]);
        Assert.Equal(expected.Length, MqttCodec.VarIntSize(value));
        Assert.Equal(VarIntStatus.Done, MqttCodec.TryReadVarInt(expected, out var decoded, out var consumed));
        Assert.Equal(value, decoded);
        Assert.Equal(expected.Length, consumed);
    }

    [Fact]
    public void TryReadVarInt_FifthContinuationByte_IsMalformed()
    {
        Assert.Equal(VarIntStatus.Malformed, MqttCodec.TryReadVarInt([0xFF, 0xFF, 0xFF, 0xFF, 0x01], out _, out _));
    }

    [Fact]
    public void TryReadVarInt_Truncated_NeedsMoreData()
    {
        Assert.Equal(VarIntStatus.NeedMoreData, MqttCodec.TryReadVarInt([0x80, 0x80], out _, out _));
    }

    [Fact]
    public void WriteConnect_UserAndPassword_MatchesHandEncodedBytes()
    {
        var writer = new ArrayBufferWriter<byte>();
        MqttCodec.WriteConnect(writer, "c1", cleanSession: true, keepAliveSeconds: 60, userName: "u", password: "pw");

        // Hand-encoded from section 3.1: variable header 10 bytes, payload 2+2 + 2+1 + 2+2 = 11 bytes -> remaining 21.
        byte[] expected =
        [
            0x10, 21,
            0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04,
            0xC2, // user name, password, clean session
            0x00, 60,
            0x00, 0x02, (byte)'c', (byte)'1',
            0x00, 0x01, (byte)'u',
            0x00, 0x02, (byte)'p', (byte)'w',
        ];
        Assert.Equal(expected, writer.WrittenSpan.ToArray());
    }

    [Fact]
    public void WritePublish_Qos1_PlacesPacketIdAfterTopic()
    {
        var size = (int)MqttCodec.PublishSize(3, 2, MqttQos.AtLeastOnce);
        var packet = new byte[size];
        var idOffset = MqttCodec.WritePublish(packet, "a/b", 3, [0x01, 0x02], MqttQos.AtLeastOnce, retain: true, packetId: 0x1234);

        Assert.Equal([0x33, 9, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', 0x12, 0x34, 0x01, 0x02], packet);
        Assert.Equal(7, idOffset);
    }

    [Fact]
    public void EncodeSubscribe_TwoFilters_HasReservedFlagsAndQosBytes()
    {
        var packet = MqttCodec.EncodeSubscribe(7, [new("a/+", MqttQos.AtLeastOnce), new("#", MqttQos.AtMostOnce)]);

        Assert.Equal([0x82, 12, 0x00, 0x07, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'+', 0x01, 0x00, 0x01, (byte)'#', 0x00], packet);
    }

    [Fact]
    public async Task ReadHeaderAsync_OneByteAtATime_DecodesPacketsBackToBack()
    {
        var payload = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var first = FakeBroker.Publish("t/1", payload, 1, 42);
        byte[] ping = [0xD0, 0x00];
        var stream = new ChunkingStream([.. first, .. ping], chunk: 1);
        using var buffer = new MqttReadBuffer(stream, 1024, TimeProvider.System);

        var header = await buffer.ReadHeaderAsync(CancellationToken.None);
        await buffer.EnsureAsync(header.TotalLength, CancellationToken.None);

        Assert.Equal(PacketType.Publish, header.Type);
        Assert.Equal(0x02, header.Flags);
        Assert.Equal(3, header.HeaderLength); // 1 type byte + 2 length bytes (309 > 127)
        Assert.Equal(2 + 3 + 2 + 300, header.RemainingLength);
        Assert.Equal(payload, buffer.Span.Slice(header.HeaderLength + 7, 300).ToArray());
        buffer.Consume(header.TotalLength);

        var second = await buffer.ReadHeaderAsync(CancellationToken.None);
        Assert.Equal(PacketType.PingResp, second.Type);
        Assert.Equal(0, second.RemainingLength);
        Assert.True(stream.Reads >= first.Length + 2, $"expected one read per byte, got {stream.Reads}");
    }

    [Fact]
    public async Task EnsureAsync_PacketLargerThanBuffer_GrowsAndKeepsBytes()
    {
        var payload = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();
        var packet = FakeBroker.Publish("big", payload, 0, 0);
        var stream = new ChunkingStream([.. packet, .. packet], chunk: 7_001);
        using var buffer = new MqttReadBuffer(stream, 1024 * 1024, TimeProvider.System);

        for (var i = 0; i < 2; i++)
        {
            var header = await buffer.ReadHeaderAsync(CancellationToken.None);
            await buffer.EnsureAsync(header.TotalLength, CancellationToken.None);
            Assert.Equal(packet, buffer.Span[..header.TotalLength].ToArray());
            buffer.Consume(header.TotalLength);
        }

        Assert.Equal(2L * packet.Length, buffer.BytesRead);
    }

    [Fact]
    public async Task ReadHeaderAsync_MalformedRemainingLength_ThrowsProtocolException()
    {
        using var buffer = new MqttReadBuffer(new ChunkingStream([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], chunk: 2), 1024, TimeProvider.System);

        var ex = await Assert.ThrowsAsync<MqttProtocolException>(() => buffer.ReadHeaderAsync(CancellationToken.None).AsTask());

        Assert.Contains("remaining length", ex.Message, StringComparison.Ordinal);
        Assert.False(ex.IsTransient);
    }

    [Fact]
    public async Task ReadHeaderAsync_PacketOverMaximum_ThrowsBeforeReadingTheBody()
    {
        // Only the fixed header is in the stream: reading any body byte would end in EndOfStreamException instead.
        using var buffer = new MqttReadBuffer(new ChunkingStream([0x30, 0x80, 0x10], chunk: 1), 1024, TimeProvider.System);

        var ex = await Assert.ThrowsAsync<MqttPacketTooLargeException>(() => buffer.ReadHeaderAsync(CancellationToken.None).AsTask());

        Assert.Equal(3 + 2048, ex.PacketSize);
        Assert.Equal(1024, ex.MaxPacketSize);
        Assert.Contains("exceeds the maximum packet size of 1024 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnsureAsync_StreamEndsMidPacket_ThrowsEndOfStream()
    {
        using var buffer = new MqttReadBuffer(new ChunkingStream([0x30, 0x05, 0x00], chunk: 1), 1024, TimeProvider.System);

        var header = await buffer.ReadHeaderAsync(CancellationToken.None);

        await Assert.ThrowsAsync<EndOfStreamException>(() => buffer.EnsureAsync(header.TotalLength, CancellationToken.None).AsTask());
    }
}
