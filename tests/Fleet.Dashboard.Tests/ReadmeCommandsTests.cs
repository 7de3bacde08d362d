using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Fleet.Dashboard.Cli;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// The README's commands, as a user copies them: every <c>fleet</c> command in its shell blocks parses (no unknown
/// option, no value of the wrong type), and the self-contained ones run from the repository root and succeed: the
/// inspections, the generated city and its tracking replay, the sample replay with the model, a few serve lines (up and
/// answering, then stopped), and <c>dotnet run --project src/Dashboard -- ...</c> with a relative path. What needs a
/// broker, another machine's feed, a PostgreSQL server or minutes of benchmark is parsed only.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class ReadmeCommandsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every <c>fleet ...</c> command of README.md's bash blocks, continuation lines joined, comments dropped.</summary>
    public static IReadOnlyList<string> FleetCommands()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        var commands = new List<string>();
        foreach (Match block in FenceRegex().Matches(readme))
        {
            var text = block.Groups[1].Value.Replace("\\\n", " ", StringComparison.Ordinal);
            foreach (var raw in text.Split('\n'))
            {
                foreach (var part in raw.Split("&&", StringSplitOptions.TrimEntries))
                {
                    var line = StripComment(part).Trim().TrimEnd('&').Trim();
                    if (line.StartsWith("fleet ", StringComparison.Ordinal) || line == "fleet")
                    {
                        commands.Add(line);
                    }
                    else if (line.StartsWith("dotnet run", StringComparison.Ordinal) && line.Contains(" -- ", StringComparison.Ordinal))
                    {
                        commands.Add("fleet " + line[(line.IndexOf(" -- ", StringComparison.Ordinal) + 4)..]);
                    }
                }
            }
        }

        return commands;
    }

    [Fact]
    public void Readme_EveryFleetCommand_Parses()
    {
        var commands = FleetCommands();

        Assert.True(commands.Count >= 40, $"only {commands.Count} fleet commands found in README.md");
        var wrong = new List<string>();
        foreach (var command in commands)
        {
            var args = Split(command)[1..];
            var parse = FleetCli.Build().Parse(args);
            // Validators that look for the example's files (rec.hfp.gz, city.zip) may object; the syntax may not.
            foreach (var error in parse.Errors.Select(e => e.Message))
            {
                if (error.Contains("Unrecognized", StringComparison.Ordinal) || error.Contains("Cannot parse", StringComparison.Ordinal)
                    || error.Contains("Required", StringComparison.Ordinal) || error.Contains("not a valid", StringComparison.Ordinal))
                {
                    wrong.Add($"{command}\n    {error}");
                }
            }

            foreach (var token in parse.Tokens.Where(t => t.Type == System.CommandLine.Parsing.TokenType.Argument && t.Value.StartsWith("--", StringComparison.Ordinal)))
            {
                wrong.Add($"{command}\n    unknown option '{token.Value}'");
            }
        }

        Assert.True(wrong.Count == 0, $"README commands that do not parse:\n{string.Join('\n', wrong)}");
    }

    [Fact]
    public async Task Readme_SelfContainedCommands_RunFromTheRepositoryRoot()
    {
        using var root = new RootCopy();
        var ran = 0;
        foreach (var command in FleetCommands())
        {
            var args = Split(command)[1..];
            if (!Runnable(args, root))
            {
                continue;
            }

            var (exit, output) = await RunAsync(root.Path, Expand(args, root.Path), TimeSpan.FromMinutes(3));
            Assert.True(exit == 0, $"`{command}` from the repository root: exit {exit}\n{output}");
            ran++;
        }

        // inspect (1 + 4 with ../shared), generate + its replay, the sample replay with the model (+ 2 with ../shared).
        Assert.True(ran >= (SharedData.Root is null ? 4 : 9), $"only {ran} README commands ran");
        Assert.True(new FileInfo(Path.Combine(root.Path, "events.jsonl")).Length > 0, "the replays wrote no events");
    }

    [Fact]
    public async Task Readme_ServeLines_ComeUpAndAnswer()
    {
        using var root = new RootCopy();
        string[][] lines =
        [
            ["serve"],
            ["serve", "--replay", "sample-data/recording.hfp.gz", "--gtfs", "sample-data/gtfs.zip", "--loop", "--replay-start", "0.5"],
            ["serve", "--api-key", "s3cret"],
        ];
        Assert.All(lines, l => Assert.Contains(FleetCommands(), c => c.StartsWith("fleet " + string.Join(' ', l), StringComparison.Ordinal)));
        foreach (var line in lines)
        {
            var url = FleetProcess.FreeUrl();
            using var process = Start(root.Path, [.. line, "--urls", url]);
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) };
            var keyed = line.Contains("--api-key");
            if (keyed)
            {
                http.DefaultRequestHeaders.Add("X-Api-Key", "s3cret");
            }

            var until = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            var vehicles = 0;
            while (vehicles == 0)
            {
                Assert.True(DateTime.UtcNow < until && !process.HasExited, $"`fleet {string.Join(' ', line)}` did not show vehicles within 90 s:\n{process.Output}");
                await Task.Delay(500, Ct);
                try
                {
                    using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri("/api/vehicles", UriKind.Relative), Ct));
                    vehicles = doc.RootElement.GetArrayLength();
                }
                catch (HttpRequestException)
                {
                    // not listening yet
                }
            }

            if (keyed)
            {
                using var anonymous = new HttpClient { BaseAddress = new Uri(url) };
                using var refused = await anonymous.GetAsync(new Uri("/api/vehicles", UriKind.Relative), Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }
        }
    }

    [Fact]
    public async Task DotnetRun_RelativePath_ReadFromWhereItWasTyped()
    {
        // The README's first way to run fleet, with a path relative to the repository root (the Web SDK would run it in
        // src/Dashboard). --no-build: the suite runs after the build, and a build here would race the other tests'.
        var (exit, stdout, stderr) = await FleetProcess.RunToEndAsync("dotnet", RepoPaths.Root, TimeSpan.FromMinutes(2),
            "run", "--no-build", "--project", "src/Dashboard", "--", "inspect", "sample-data/recording.hfp.gz", "--json");

        Assert.True(exit == 0, $"exit {exit}:\n{stderr}");
        using var json = JsonDocument.Parse(stdout);
        Assert.True(json.RootElement.GetProperty("messages").GetInt64() > 100_000);
    }

    // What runs here: nothing that waits for a broker, a server, another machine or Ctrl+C, nor the benchmarks.
    private static bool Runnable(string[] args, RootCopy root)
    {
        if (args.Length == 0)
        {
            return false;
        }

        var joined = string.Join(' ', args);
        if (args[0] is "inspect")
        {
            return args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).All(a => Exists(root.Path, a));
        }

        if (args[0] is "generate" && joined.Contains("--out ./city1 --routes 12", StringComparison.Ordinal))
        {
            return true;
        }

        if (args[0] is "replay" && joined.Contains("--out-events", StringComparison.Ordinal) && joined.Contains("--speed max", StringComparison.Ordinal))
        {
            return args.Skip(1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).All(a => Exists(root.Path, a));
        }

        return false;
    }

    private static bool Exists(string root, string path) =>
        File.Exists(Path.Combine(root, path)) || Directory.Exists(Path.Combine(root, path)) || Glob(root, path).Length > 0;

    private static string[] Expand(string[] args, string root) =>
        [.. args.SelectMany(a => a.Contains('*', StringComparison.Ordinal) ? Glob(root, a) : [a])];

    private static string[] Glob(string root, string pattern)
    {
        var dir = Path.GetDirectoryName(pattern) ?? ".";
        var full = Path.Combine(root, dir);
        return pattern.Contains('*', StringComparison.Ordinal) && Directory.Exists(full)
            ? [.. Directory.GetFiles(full, Path.GetFileName(pattern)).Order(StringComparer.Ordinal).Select(f => Path.Combine(dir, Path.GetFileName(f)))]
            : [];
    }

    private static FleetProcess Start(string workingDirectory, string[] args) => FleetProcess.StartIn(workingDirectory, args);

    private static async Task<(int Exit, string Output)> RunAsync(string workingDirectory, string[] args, TimeSpan timeout)
    {
        var done = await FleetProcess.RunFleetAsync(workingDirectory, timeout, args);
        return (done.Exit, done.Output);
    }

    // Shell words: spaces split, single and double quotes group.
    private static string[] Split(string command)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in command)
        {
            if (quote is { } q)
            {
                if (c == q)
                {
                    quote = null;
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return [.. words];
    }

    private static string StripComment(string line)
    {
        char? quote = null;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote is { } q)
            {
                quote = c == q ? null : quote;
            }
            else if (c is '\'' or '"')
            {
                quote = c;
            }
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1])))
            {
                return line[..i];
            }
        }

        return line;
    }

    [GeneratedRegex("```(?:bash|sh)\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FenceRegex();

    /// <summary>
    /// A stand-in for the repository root where commands may write (./city1, events.jsonl): <c>sample-data</c> links
    /// to the repository's, and <c>../shared</c> to the shared data when there is some.
    /// </summary>
    private sealed class RootCopy : IDisposable
    {
        private readonly string _parent;

        public RootCopy()
        {
            _parent = Directory.CreateTempSubdirectory("fleet-readme-").FullName;
            Path = System.IO.Path.Combine(_parent, "main");
            Directory.CreateDirectory(Path);
            Directory.CreateSymbolicLink(System.IO.Path.Combine(Path, "sample-data"), RepoPaths.SampleData);
            if (SharedData.Root is { } shared)
            {
                Directory.CreateSymbolicLink(System.IO.Path.Combine(_parent, "shared"), System.IO.Path.GetFullPath(System.IO.Path.Combine(shared, "..")));
            }
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(_parent, recursive: true);
    }
}
