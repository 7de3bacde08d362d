using System.Globalization;
using System.Text.Json;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet serve --config fleet.json</c>: every option serve takes, as a JSON object whose property names are the
/// options' names without the dashes (<c>"urls"</c>, <c>"gtfs"</c>, <c>"mqtt-listen"</c> or <c>"mqttListen"</c>).
/// Strings and numbers are values, <c>true</c> turns a switch on, arrays repeat an option (<c>"mqtt"</c>,
/// <c>"topic"</c>, <c>"gtfs-rt"</c>, in the file's order). An option given on the command line replaces the file's
/// (all of the file's values of a repeated one).
/// </summary>
internal static class ConfigFile
{
    /// <summary>The arguments with <c>--config FILE</c> replaced by the file's settings, right after the command.</summary>
    /// <exception cref="InvalidDataException">The file is not a JSON object of settings.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static string[] Expand(string[] args)
    {
        var at = Array.FindIndex(args, a => a == "--config" || a.StartsWith("--config=", StringComparison.Ordinal));
        if (at < 0)
        {
            return args;
        }

        string path;
        int consumed;
        if (args[at].StartsWith("--config=", StringComparison.Ordinal))
        {
            path = args[at]["--config=".Length..];
            consumed = 1;
        }
        else
        {
            if (at + 1 >= args.Length)
            {
                throw new InvalidDataException("--config needs a file");
            }

            path = args[at + 1];
            consumed = 2;
        }

        // An option the command line gives replaces the file's (for a repeated one, all of the file's).
        var given = args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a.Split('=')[0]).ToHashSet(StringComparer.Ordinal);
        var settings = Settings(path, given);
        var command = Array.IndexOf(args, "serve");
        if (command < 0 || command > at)
        {
            throw new InvalidDataException("--config is an option of fleet serve (fleet serve --config fleet.json)");
        }

        return [.. args[..(command + 1)], .. settings, .. args[(command + 1)..at], .. args[(at + consumed)..]];
    }

    private static List<string> Settings(string path, HashSet<string> given)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"--config {path}: file not found", path);
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"--config {path}: not JSON ({ex.Message})", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"--config {path}: the settings must be one JSON object");
            }

            var result = new List<string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                var option = "--" + Kebab(p.Name);
                if (option == "--config")
                {
                    throw new InvalidDataException($"--config {path}: a config file cannot name another");
                }

                if (given.Contains(option))
                {
                    continue;
                }

                foreach (var value in p.Value.ValueKind == JsonValueKind.Array ? p.Value.EnumerateArray().ToList() : [p.Value])
                {
                    switch (value.ValueKind)
                    {
                        case JsonValueKind.True:
                            result.Add(option);
                            break;
                        case JsonValueKind.False or JsonValueKind.Null:
                            break;
                        case JsonValueKind.String:
                            result.Add(option);
                            result.Add(value.GetString()!);
                            break;
                        case JsonValueKind.Number:
                            result.Add(option);
                            result.Add(value.GetDouble().ToString("R", CultureInfo.InvariantCulture));
                            break;
                        default:
                            throw new InvalidDataException($"--config {path}: \"{p.Name}\" must be a string, a number, true or an array of those");
                    }
                }
            }

            return result;
        }
    }

    // mqttListen -> mqtt-listen; mqtt-listen stays.
    private static string Kebab(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));
}
