using Akka;
using Akka.Streams.Dsl;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Mqtt;

namespace Fleet.Ingest.Streams;

/// <summary>HSL HFP parsing as an Akka.Streams flow.</summary>
public static class HfpFlows
{
    /// <summary>
    /// MQTT messages to vehicle events: each message stamped with the wall clock when it reaches the flow (its receive
    /// time) and parsed by <paramref name="hfp"/>; messages the parser refuses are counted there by reason
    /// (<see cref="HfpStream.Rejections"/>) and go no further.
    /// </summary>
    /// <param name="hfp">The parser with its counters; used by this flow's one stage only (materialise the flow once).</param>
    /// <param name="time">The wall clock.</param>
    public static Flow<MqttMessage, VehicleEvent, NotUsed> Parse(HfpStream hfp, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(hfp);
        ArgumentNullException.ThrowIfNull(time);
        return Flow.Create<MqttMessage>()
            .Select(m => (Parsed: hfp.Process(m.TopicUtf8.Span, m.Payload.Span, time.GetUtcNow().UtcDateTime, out var ev) == HfpOutcome.Event, Event: ev))
            .Where(p => p.Parsed)
            .Select(p => p.Event);
    }
}
