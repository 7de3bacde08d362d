using BenchmarkDotNet.Attributes;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;

namespace Fleet.Bench;

/// <summary>
/// HFP parsing on the real 1,034-message recording of bus 0018/01029 on 2024-02-13 (../shared/data/hfp), repeated.
/// Target: at least 1,000,000 messages/s on one core (under 1,000 ns per message) and under 100 bytes allocated per message.
/// </summary>
/// <remarks>
/// Each benchmark operation is one message (<c>OperationsPerInvoke</c> = messages in the file), so the reported
/// Mean is ns/message and Allocated is bytes/message. The parser (and its interned ids) lives across invocations,
/// as it does in a long-running ingest loop.
/// </remarks>
[MemoryDiagnoser]
public class HfpParseBenchmarks
{
    /// <summary>The file the benchmark reads, relative to shared/data.</summary>
    public const string File = "hfp/hfp-v2_2024-02-13_bus-0018-01029_route5520.txt";

    private const int Messages = 1034;
    private byte[][] _topics = [];
    private byte[][] _payloads = [];
    private DateTime[] _times = [];
    private byte[][] _lines = [];
    private HfpParser _parser = new();

    /// <summary>The parser's hand-written scanner (true, the default) or <c>Utf8JsonReader</c> for every payload (false).</summary>
    [Params(true, false)]
    public bool FastPath { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var path = BenchData.RequireFile(File);
        var topics = new List<byte[]>();
        var payloads = new List<byte[]>();
        var times = new List<DateTime>();
        using (var reader = RecordingReader.Open(path))
        {
            while (reader.TryRead(out var line))
            {
                topics.Add(line.Topic.ToArray());
                payloads.Add(line.Payload.ToArray());
                times.Add(line.ReceiveTime);
            }
        }

        if (topics.Count != Messages)
        {
            throw new InvalidOperationException($"{path}: expected {Messages} messages, read {topics.Count}.");
        }

        _topics = [.. topics];
        _payloads = [.. payloads];
        _times = [.. times];
        _lines = [.. System.IO.File.ReadAllLines(path).Select(System.Text.Encoding.UTF8.GetBytes)];
        _parser = new HfpParser(options: new HfpParserOptions { FastPath = FastPath });
    }

    /// <summary>Topic + payload already split (as the MQTT client hands them over): parse into a VehicleEvent.</summary>
    [Benchmark(OperationsPerInvoke = Messages, Baseline = true)]
    public long ParseMessage()
    {
        long sum = 0;
        var parser = _parser;
        for (var i = 0; i < _topics.Length; i++)
        {
            if (parser.TryParse(_topics[i], _payloads[i], _times[i], out var ev, out _))
            {
                sum += ev.EventTime.Ticks;
            }
        }

        return sum;
    }

    /// <summary>A whole recording line: receive time, topic/payload split, then parse.</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    public long ParseRecordingLine()
    {
        long sum = 0;
        var parser = _parser;
        foreach (var bytes in _lines)
        {
            var line = RecordingReader.ParseLine(bytes, 0);
            if (parser.TryParse(line.Topic, line.Payload, line.ReceiveTime, out var ev, out _))
            {
                sum += ev.EventTime.Ticks;
            }
        }

        return sum;
    }

    /// <summary>The topic levels alone (for the split of the cost between topic and payload).</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    public long ParseTopicOnly()
    {
        long sum = 0;
        foreach (var topic in _topics)
        {
            if (HfpTopic.TryParse(topic, out var t))
            {
                sum += t.VehicleId.Start.Value;
            }
        }

        return sum;
    }

    /// <summary>The JSON payload alone, as a topic-less source (CSV) hands it over.</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    public long ParsePayloadOnly()
    {
        long sum = 0;
        var parser = _parser;
        for (var i = 0; i < _payloads.Length; i++)
        {
            if (parser.TryParsePayload(_payloads[i], _times[i], out var ev, out _))
            {
                sum += ev.EventTime.Ticks;
            }
        }

        return sum;
    }
}
