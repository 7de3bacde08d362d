using System.Globalization;
using System.Text.Json;

namespace Fleet.Tracking.Output;

/// <summary>
/// Writes the public derived events (arrival, departure, alert, prediction) as JSON lines:
/// <c>{"type":"arrival","time":"2026-03-02T06:01:02.000Z","vehicle":"0018/01029","trip":"...","stop":"...",...}</c>.
/// </summary>
/// <remarks>
/// Field order and number formats are fixed and culture-invariant, so the same events give the same bytes.
/// Absent fields are left out. Not thread-safe (the replay engine publishes from one thread).
/// </remarks>
public sealed class JsonLinesOutput : ITrackingOutput, IDisposable
{
    private readonly Stream _stream;
    private readonly Utf8JsonWriter _writer;
    private readonly bool _leaveOpen;

    /// <summary>Writes to <paramref name="stream"/>.</summary>
    public JsonLinesOutput(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, SkipValidation = true });
    }

    /// <summary>Lines written.</summary>
    public long Lines { get; private set; }

    /// <summary>Lines written per type.</summary>
    public long[] LinesByType { get; } = new long[4];

    /// <inheritdoc />
    public void Publish(DerivedEvent derived)
    {
        ArgumentNullException.ThrowIfNull(derived);
        if (!derived.IsPublic)
        {
            return;
        }

        var w = _writer;
        w.Reset(_stream);
        w.WriteStartObject();
        w.WriteString("type"u8, TypeName(derived.Type));
        if (derived.Type == DerivedEventType.Alert)
        {
            w.WriteString("kind"u8, KindName(derived.Kind));
            w.WriteString("state"u8, derived.Cleared ? "cleared"u8 : "raised"u8);
        }

        w.WriteString("time"u8, Iso(derived.Time));
        if (derived.VehicleId is not null)
        {
            w.WriteString("vehicle"u8, derived.VehicleId);
        }

        if (derived.TripId is not null)
        {
            w.WriteString("trip"u8, derived.TripId);
        }

        if (derived.RouteId is not null)
        {
            w.WriteString("route"u8, derived.RouteId);
        }

        if (derived.DirectionId >= 0)
        {
            w.WriteNumber("direction"u8, derived.DirectionId);
        }

        if (derived.StopId is not null)
        {
            w.WriteString("stop"u8, derived.StopId);
        }

        if (derived.StopSequence >= 0)
        {
            w.WriteNumber("seq"u8, derived.StopSequence);
        }

        if (derived.Scheduled is { } scheduled)
        {
            w.WriteString("scheduled"u8, Iso(scheduled));
        }

        if (derived.Predicted is { } predicted)
        {
            w.WriteString("predicted"u8, Iso(predicted));
        }

        if (derived.PredictedLow is { } low)
        {
            w.WriteString("low"u8, Iso(low));
        }

        if (derived.PredictedHigh is { } high)
        {
            w.WriteString("high"u8, Iso(high));
        }

        if (derived.DelaySeconds is { } delay)
        {
            w.WriteNumber("delay"u8, delay);
        }

        if (derived.Source != DetectionSource.None)
        {
            w.WriteString("source"u8, derived.Source == DetectionSource.StopEvent ? "stop-event"u8 : "position"u8);
        }

        if (derived.Value is { } value)
        {
            w.WriteNumber("value"u8, Math.Round(value, 1));
        }

        if (derived.Other is not null)
        {
            w.WriteString("other"u8, derived.Other);
        }

        w.WriteEndObject();
        w.Flush();
        _stream.WriteByte((byte)'\n');
        Lines++;
        LinesByType[(int)derived.Type]++;
    }

    /// <summary>Flushes the stream.</summary>
    public void Flush() => _stream.Flush();

    /// <inheritdoc />
    public void Dispose()
    {
        _writer.Dispose();
        _stream.Flush();
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    /// <summary>The <c>type</c> value of a derived event type.</summary>
    public static string TypeName(DerivedEventType type) => type switch
    {
        DerivedEventType.Arrival => "arrival",
        DerivedEventType.Departure => "departure",
        DerivedEventType.Alert => "alert",
        DerivedEventType.Prediction => "prediction",
        _ => type.ToString().ToLowerInvariant(),
    };

    /// <summary>The <c>kind</c> value of an alert kind.</summary>
    public static string KindName(AlertKind kind) => kind switch
    {
        AlertKind.OffRoute => "off-route",
        AlertKind.Stale => "stale",
        AlertKind.Bunching => "bunching",
        AlertKind.SevereDelay => "severe-delay",
        AlertKind.TripCancelled => "trip-cancelled",
        AlertKind.StopSkipped => "stop-skipped",
        _ => "none",
    };

    private static string Iso(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
