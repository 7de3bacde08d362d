using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fleet.Gtfs.Realtime;

/// <summary>
/// Agencies' GTFS-Realtime JSON that is not the protobuf JSON mapping, turned into it (when the strict parse failed):
/// a <c>{"status": "OK", "error": null, "response": {FeedMessage}}</c> wrapper (Auckland Transport's API), a
/// <c>stop_time_update</c> given as one object instead of a list, and times and timestamps as floating-point
/// seconds (truncated to whole seconds). Numeric enum values are already accepted by the mapping.
/// </summary>
public static class GtfsRtJsonQuirks
{
    private static readonly HashSet<string> s_seconds = new(StringComparer.Ordinal) { "timestamp", "time", "start", "end" };

    /// <summary>The FeedMessage JSON with the quirks undone, or null when the text is not a JSON object.</summary>
    /// <exception cref="GtfsRtFormatException">A wrapper that says the request failed (its status and error).</exception>
    public static string? Normalize(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }

        if (root is not JsonObject obj)
        {
            return null;
        }

        if (!obj.ContainsKey("header") && obj["response"] is JsonObject response)
        {
            var status = obj["status"]?.ToString();
            if (status is not null && !status.Equals("OK", StringComparison.OrdinalIgnoreCase))
            {
                throw new GtfsRtFormatException($"the feed's wrapper says status '{status}', error '{obj["error"]}'");
            }

            obj = response;
            obj.Parent?.AsObject().Remove("response");
        }

        Fix(obj);
        return obj.ToJsonString();
    }

    private static void Fix(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    if (key is "stop_time_update" or "stopTimeUpdate" && value is JsonObject single)
                    {
                        o[key] = new JsonArray(single.DeepClone());
                        Fix(o[key]);
                    }
                    else if (s_seconds.Contains(key) && value is JsonValue v && v.TryGetValue<double>(out var seconds) && seconds != Math.Floor(seconds))
                    {
                        o[key] = (long)Math.Floor(seconds);
                    }
                    else
                    {
                        Fix(value);
                    }
                }

                break;
            case JsonArray a:
                foreach (var item in a)
                {
                    Fix(item);
                }

                break;
        }
    }
}
