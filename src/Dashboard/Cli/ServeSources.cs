using System.CommandLine;
using System.CommandLine.Parsing;
using Fleet.Dashboard.Sources;

namespace Fleet.Dashboard.Cli;

/// <summary>Reads the live inputs of <c>fleet serve</c> from its command line.</summary>
internal static class ServeSources
{
    /// <summary>
    /// The MQTT brokers, in the order given. Each <c>--topic</c> belongs to the <c>--mqtt</c> before it; topics given
    /// before the first <c>--mqtt</c> apply to every broker; a broker left without a topic gets
    /// <see cref="MqttSourceOptions.DefaultTopic"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A URL or topic filter is not valid.</exception>
    public static List<MqttSourceOptions> Brokers(ParseResult parse)
    {
        var shared = new List<string>();
        var brokers = new List<(string Url, List<string> Topics)>();
        string? pending = null;
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.Option)
            {
                pending = token.Value;
                continue;
            }

            if (token.Type != TokenType.Argument || pending is null)
            {
                continue;
            }

            switch (pending)
            {
                case "--mqtt":
                    brokers.Add((token.Value, []));
                    break;
                case "--topic" when brokers.Count == 0:
                    shared.Add(token.Value);
                    break;
                case "--topic":
                    brokers[^1].Topics.Add(token.Value);
                    break;
            }

            pending = null;
        }

        return [.. brokers.Select(b => MqttSourceOptions.Parse(b.Url, [.. shared, .. b.Topics]))];
    }
}
