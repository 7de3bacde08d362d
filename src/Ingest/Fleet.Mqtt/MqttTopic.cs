using System.Text;

namespace Fleet.Mqtt;

/// <summary>A topic filter and the maximum QoS asked for it.</summary>
public readonly record struct MqttSubscription(string TopicFilter, MqttQos Qos = MqttQos.AtLeastOnce);

/// <summary>Validation and matching of MQTT topic names and topic filters (MQTT 3.1.1 section 4.7).</summary>
public static class MqttTopic
{
    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="topic"/> is a valid topic name to publish to.</summary>
    public static void ValidateName(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        CheckCommon(topic, nameof(topic));
        if (topic.AsSpan().IndexOfAny('+', '#') >= 0)
        {
            throw new ArgumentException($"topic '{topic}' contains a wildcard ('+' or '#'); wildcards are only allowed in subscriptions", nameof(topic));
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="filter"/> is a valid topic filter.</summary>
    /// <remarks>'+' must occupy a whole level; '#' must occupy the whole last level.</remarks>
    public static void ValidateFilter(string filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        CheckCommon(filter, nameof(filter));
        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level.Contains('#', StringComparison.Ordinal) && (level.Length != 1 || i != levels.Length - 1))
            {
                throw new ArgumentException($"topic filter '{filter}': '#' must be the whole last level", nameof(filter));
            }

            if (level.Contains('+', StringComparison.Ordinal) && level.Length != 1)
            {
                throw new ArgumentException($"topic filter '{filter}': '+' must be a whole level", nameof(filter));
            }
        }
    }

    /// <summary>Whether <paramref name="topic"/> matches <paramref name="filter"/> as a broker would route it.</summary>
    /// <remarks>Topics starting with '$' are not matched by filters starting with a wildcard.</remarks>
    public static bool Matches(string filter, string topic)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(topic);
        if (topic.StartsWith('$') && (filter.StartsWith('+') || filter.StartsWith('#')))
        {
            return false;
        }

        var f = filter.AsSpan();
        var t = topic.AsSpan();
        while (true)
        {
            var fEnd = f.IndexOf('/');
            var fLevel = fEnd < 0 ? f : f[..fEnd];
            if (fLevel is "#")
            {
                return true;
            }

            var tEnd = t.IndexOf('/');
            var tLevel = tEnd < 0 ? t : t[..tEnd];
            if (!(fLevel is "+") && !fLevel.SequenceEqual(tLevel))
            {
                return false;
            }

            if (fEnd < 0 || tEnd < 0)
            {
                // "a/#" also matches "a": the parent level.
                return fEnd < 0 && tEnd < 0 || (tEnd < 0 && f[(fEnd + 1)..] is "#");
            }

            f = f[(fEnd + 1)..];
            t = t[(tEnd + 1)..];
        }
    }

    private static void CheckCommon(string value, string paramName)
    {
        if (value.Length == 0)
        {
            throw new ArgumentException("an MQTT topic or filter must not be empty", paramName);
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"topic '{value}' contains a NUL character", paramName);
        }

        if (Encoding.UTF8.GetByteCount(value) > ushort.MaxValue)
        {
            throw new ArgumentException("an MQTT topic or filter must not exceed 65,535 UTF-8 bytes", paramName);
        }
    }
}
