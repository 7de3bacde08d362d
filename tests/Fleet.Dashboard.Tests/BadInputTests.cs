using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Fleet.Dashboard.HubClient;
using Fleet.Testing;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// Ordinary mistakes, each with the answer it must get: the CLI prints one line naming the input and what is wrong
/// (exit 2 for usage, 1 for a failure, never a stack trace), the API answers RFC 7807 problem+json, the hub answers
/// the caller with a message. Files: empty, truncated gzip, not protobuf, a huge line, another encoding.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BadInputTests : IClassFixture<BadInputTests.Files>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly Files _files;

    public BadInputTests(Files files) => _files = files;

    /// <summary>Bad files and folders, made once for the class.</summary>
    public sealed class Files : IDisposable
    {
        public Files()
        {
            Dir = Directory.CreateTempSubdirectory("fleet-bad-").FullName;
            File.WriteAllBytes(Path("garbage.zip"), Encoding.ASCII.GetBytes("this is not a zip archive at all"));
            using (var zip = ZipFile.Open(Path("no-gtfs.zip"), ZipArchiveMode.Create))
            {
                using var w = new StreamWriter(zip.CreateEntry("readme.txt").Open());
                w.Write("hello");
            }

            File.WriteAllBytes(Path("empty.txt"), []);
            File.WriteAllBytes(Path("empty.pb"), []);
            File.WriteAllBytes(Path("wrong.pb"), [0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0x96, 0x01, 0xff]);
            var sample = System.IO.Path.Combine(RepoPaths.SampleData, "recording.hfp.gz");
            var bytes = File.ReadAllBytes(sample);
            File.WriteAllBytes(Path("truncated.hfp.gz"), bytes[..(bytes.Length / 2)]);
            var line = "2026-03-02T05:15:00.000Z /hfp/v2/journey/ongoing/vp/bus/0018/00426/1027/1/Niittykumpu/07:03/1002934/0/60;24/17/44/26 ";
            File.WriteAllText(Path("huge-line.txt"), line + "{\"VP\":{\"desi\":\"" + new string('x', 3_000_000) + "\"}}\n" + line + "{}\n");
            File.WriteAllBytes(Path("latin1.txt"), Encoding.Latin1.GetBytes(line + "{\"VP\":{\"desi\":\"Itäkeskus\",\"veh\":426}}\n"));
            File.WriteAllBytes(Path("utf16.txt"), Encoding.Unicode.GetBytes(line + "{}\n"));
            File.WriteAllText(Path("a-file"), "x");
            Directory.CreateDirectory(Path("no-snapshots"));
            File.WriteAllText(Path("no-snapshots/readme.txt"), "no feed here");
        }

        public string Dir { get; }

        public string Path(string name) => System.IO.Path.Combine(Dir, name);

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    // ---- the command line -------------------------------------------------------------------------------------

    /// <summary>(case, arguments with {dir} for the bad files' folder and {sample} for sample-data, exit code, what stderr says).</summary>
    public static TheoryData<string, string, int, string> CliCases => new()
    {
        { "replay, GTFS not a zip", "replay {sample}/recording.hfp.gz --gtfs {dir}/garbage.zip --speed max --out-events {dir}/out.jsonl", 1, "garbage.zip" },
        { "train, GTFS not a zip", "train --gtfs {dir}/garbage.zip --recording {sample}/recording.hfp.gz --out {dir}/m.bin", 1, "garbage.zip" },
        { "evaluate, GTFS not a zip", "evaluate --gtfs {dir}/garbage.zip --recording {sample}/recording.hfp.gz --model {sample}/model.bin", 1, "garbage.zip" },
        { "train, no recorded day", "train --gtfs {sample}/gtfs.zip --out {dir}/m.bin", 2, "give recorded days" },
        { "train, HFP and GTFS-RT mixed", "train --gtfs {sample}/gtfs.zip --recording {sample}/recording.hfp.gz --gtfs-rt {dir} --out {dir}/m.bin", 2, "cannot be mixed" },
        { "train, bad window", "train --gtfs {sample}/gtfs.zip --gtfs-rt {dir} --window 14-04 --out {dir}/m.bin", 2, "--window '14-04' is not HH:mm-HH:mm" },
        { "train, archive without snapshots", "train --gtfs {sample}/gtfs.zip --gtfs-rt {dir}/no-snapshots --out {dir}/m.bin", 1, "no GTFS-Realtime snapshots" },
        { "evaluate, archive without snapshots", "evaluate --gtfs {sample}/gtfs.zip --gtfs-rt {dir}/no-snapshots --model {sample}/model.bin", 1, "no GTFS-Realtime snapshots" },
        { "evaluate, timetable from no snapshots", "evaluate --timetable-from {dir}/no-snapshots --timezone UTC --gtfs-rt {dir}/no-snapshots --model {sample}/model.bin", 1, "no GTFS-Realtime snapshots" },
        { "train, unknown trainer", "train --gtfs {sample}/gtfs.zip --recording {sample}/recording.hfp.gz --trainer xgboost --out {dir}/m.bin", 2, "xgboost" },
        { "train, bad learning rate", "train --gtfs {sample}/gtfs.zip --recording {sample}/recording.hfp.gz --learning-rate 3 --out {dir}/m.bin", 2, "--learning-rate must be in (0, 1]" },
        { "train, two schedules", "train --gtfs {sample}/gtfs.zip --timetable-from {dir} --timezone UTC --gtfs-rt {dir} --out {dir}/m.bin", 2, "one of them" },
        { "train, timetable without zone", "train --timetable-from {dir} --gtfs-rt {dir} --out {dir}/m.bin", 2, "needs --timezone" },
        { "evaluate, unknown zone", "evaluate --timetable-from {dir} --timezone Mars/Olympus --gtfs-rt {dir} --model {sample}/model.bin", 2, "'Mars/Olympus' is not a known time zone" },
        { "bench trainers, same seeds", "bench trainers --train-seed 3 --test-seed 3", 2, "must differ" },
        { "generate into /proc", "generate --out /proc/nope/x", 1, "cannot create the folder --out /proc/nope/x" },
        { "generate into a file", "generate --out {dir}/a-file", 2, "is a file" },
        { "generate, too few vehicles", "generate --out {dir}/g --vehicles 10", 2, "--vehicles 10: must be at least 2 per route" },
        { "generate, too short", "generate --out {dir}/g --hours 0.5", 2, "--hours 0.5: must be at least 0.75" },
        { "generate, past midnight", "generate --out {dir}/g --start 23:30 --hours 1", 2, "must end by midnight" },
        { "generate, bad date", "generate --out {dir}/g --date 2026-02-30", 2, "--date '2026-02-30' is not yyyy-MM-dd" },
        { "inspect, zip that is not one", "inspect {dir}/garbage.zip", 1, "not a readable zip archive" },
        { "inspect, zip without GTFS", "inspect {dir}/no-gtfs.zip", 1, "without the GTFS files" },
        { "inspect, missing file", "inspect {dir}/missing.txt", 2, "file not found" },
        { "inspect, not protobuf", "inspect {dir}/wrong.pb", 1, "wrong.pb" },
        { "serve, unknown option", "serve --bogus", 2, "unknown option '--bogus'" },
        { "replay, unknown option", "replay --bogus", 2, "unknown option '--bogus'" },
        { "unknown command", "frobnicate", 2, "frobnicate" },
        { "inspect, no file", "inspect", 2, "Required argument missing for command: 'inspect'" },
        { "serve, speed 0", "serve --speed 0", 2, "--speed must be > 0" },
        { "serve, negative lateness", "serve --lateness -1", 2, "--lateness" },
        { "serve, stale-after 0", "serve --stale-after 0", 2, "--stale-after must be seconds from 1 to 86400" },
        { "serve, missing recording", "serve --replay {dir}/missing.hfp.gz", 2, "missing.hfp.gz" },
        { "serve, GTFS not a zip", "serve --gtfs {dir}/garbage.zip --urls http://127.0.0.1:0", 2, "garbage.zip' is not a GTFS zip archive" },
        { "subscribe, nothing to follow", "subscribe", 2, "give --stop, --route, --vehicle or --bbox" },
        { "subscribe, ftp URL", "subscribe --url ftp://example.org --stop S1", 2, "--url 'ftp://example.org' is not an http(s) URL" },
        { "subscribe, default URL, no server", "subscribe --route 1061 --url http://127.0.0.1:9", 2, "cannot connect to http://127.0.0.1:9" },
        { "replay, count not a number", "replay {sample}/recording.hfp.gz --report-every abc", 2, "abc" },
    };

    [Theory]
    [MemberData(nameof(CliCases))]
    public async Task Cli_BadInput_OneLineNamingIt(string name, string arguments, int exitCode, string says)
    {
        var args = arguments.Replace("{dir}", _files.Dir, StringComparison.Ordinal).Replace("{sample}", RepoPaths.SampleData, StringComparison.Ordinal)
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);

        var (exit, stdout, stderr) = await RunAsync(args);

        Assert.True(exit == exitCode, $"{name}: exit {exit}, expected {exitCode}; stderr:\n{stderr}\nstdout:\n{stdout}");
        Assert.Contains(says, stderr + stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("not supported yet", stderr, StringComparison.Ordinal);
        AssertNoStackTrace(name, stderr + stdout);
    }

    [Theory]
    [InlineData("empty.txt", "\"messages\":0")]
    [InlineData("truncated.hfp.gz", "TruncatedLine")]
    [InlineData("huge-line.txt", "Oversized")]
    [InlineData("latin1.txt", "MissingTimestamp")]
    [InlineData("utf16.txt", "BadReceiveTime")]
    public async Task Cli_InspectOddFile_SummarisesWithRejectionsCounted(string file, string says)
    {
        // Readable files with bad content are not failures: every line is parsed or counted as rejected by its reason
        // (a gzip cut off in the middle gives the lines before the cut, and the cut line as truncated).
        var (exit, stdout, stderr) = await RunAsync("inspect", _files.Path(file), "--json");

        Assert.True(exit == 0, $"{file}: exit {exit}; stderr:\n{stderr}");
        using var json = JsonDocument.Parse(stdout);
        Assert.Contains(says, stdout, StringComparison.Ordinal);
        var messages = json.RootElement.GetProperty("messages").GetInt64();
        var parsed = json.RootElement.GetProperty("parsed").GetInt64();
        var rejected = json.RootElement.GetProperty("rejected").EnumerateObject().Sum(r => r.Value.GetInt64());
        Assert.Equal(messages, parsed + rejected);
        AssertNoStackTrace(file, stderr);
    }

    [Fact]
    public async Task Cli_InspectIntoAPipe_NoColourCodes()
    {
        var (exit, stdout, _) = await RunAsync("inspect", System.IO.Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"));

        Assert.Equal(0, exit);
        Assert.Contains("messages", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', stdout);
    }

    [Fact]
    public async Task Cli_ServeOnABusyPort_SaysSoAndStopsQuietly()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var data = Directory.CreateTempSubdirectory("fleet-busy-").FullName;

        var (exit, stdout, stderr) = await RunAsync(["serve", "--urls", $"http://127.0.0.1:{port}"], workingDirectory: data);

        Assert.True(exit == 1, $"exit {exit}; stderr:\n{stderr}");
        Assert.Contains($"127.0.0.1:{port}", stderr, StringComparison.Ordinal);
        Assert.Contains("in use", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stderr + stdout, StringComparison.Ordinal);
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task Cli_ReplayStoppedWithSigterm_SaysStoppedAndHowFar()
    {
        // Real time: the sample hour takes an hour, so the replay is well short of its end when SIGTERM comes.
        using var replay = FleetProcess.Start("replay", System.IO.Path.Combine(RepoPaths.SampleData, "recording.hfp.gz"), "--speed", "1", "--report-every", "0.5");
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!replay.Output.Contains("replay ", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < until, $"no status line within 30 s:\n{replay.Output}");
            await Task.Delay(100, Ct);
        }

        using (var kill = Process.Start("kill", ["-TERM", replay.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }

        until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!replay.HasExited)
        {
            Assert.True(DateTime.UtcNow < until, $"fleet replay did not end within 30 s of SIGTERM:\n{replay.Output}");
            await Task.Delay(100, Ct);
        }

        Assert.Contains("stopped: replay ", replay.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("100%", replay.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("done:", replay.Output, StringComparison.Ordinal);
    }

    // ---- the API ----------------------------------------------------------------------------------------------

    /// <summary>(method, path, body or null, content type, status, what the problem's detail says).</summary>
    public static TheoryData<string, string, string?, string, int, string> ApiCases => new()
    {
        { "GET", "/api/stops/S1/arrivals?minutes=abc", null, "", 400, "minutes" },
        { "GET", "/api/stops/S1/arrivals?minutes=0", null, "", 400, "minutes must be between 1 and 1440" },
        { "GET", "/api/stops/nope/arrivals", null, "", 404, "unknown stop 'nope'" },
        { "GET", "/api/vehicles?bbox=1,2,x", null, "", 400, "bbox '1,2,x'" },
        { "GET", "/api/vehicles?bbox=30,60,20,61", null, "", 400, "bbox '30,60,20,61'" },
        { "GET", "/api/vehicles/0099/12345", null, "", 404, "unknown vehicle '0099/12345'" },
        { "GET", "/api/no-such-thing", null, "", 404, "no such endpoint: GET /api/no-such-thing" },
        { "DELETE", "/api/vehicles", null, "", 405, "DELETE is not allowed on /api/vehicles" },
        { "GET", "/gtfs-rt/trip-updates?format=xml", null, "", 400, "format must be 'protobuf' (the default) or 'json', not 'xml'" },
        { "POST", "/api/replay", "{not json", "application/json", 400, "ReplayChange" },
        { "POST", "/api/replay", "speed=10", "text/plain", 415, "application/json" },
        { "POST", "/api/replay", "{\"speed\":10}", "application/json", 404, "not replaying" },
        { "GET", "/api/replay", null, "", 404, "not replaying (start fleet serve with --replay)" },
    };

    [Theory]
    [MemberData(nameof(ApiCases))]
    public async Task Api_BadRequest_ProblemJsonNamingTheInput(string method, string path, string? body, string contentType, int status, string says)
    {
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path.TrimStart('/'), UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, contentType);
        }

        using var response = await host.Http.SendAsync(request, Ct);

        await AssertProblemAsync(response, status, says);
    }

    [Fact]
    public async Task Api_WrongKey_ProblemJson401()
    {
        await using var host = await TestHost.StartAsync(apiKey: "s3cret");

        using var response = await host.Http.GetAsync(new Uri("api/vehicles", UriKind.Relative), Ct);

        await AssertProblemAsync(response, 401, "missing or wrong API key");
    }

    // ---- the hub ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("bbox", "1,2,x,4", "not a number")]
    [InlineData("bbox", "1,2,3", "minLon,minLat,maxLon,maxLat")]
    [InlineData("bus", "1", "unknown kind")]
    [InlineData("stop", "", "must not be empty")]
    [InlineData("stop", "S0012", "unknown stop 'S0012'")]
    [InlineData("route", "1061", "unknown route '1061'")]
    [InlineData("vehicle", "nope", "unknown vehicle 'nope'")]
    public async Task Hub_BadSubscription_ErrorMessageToTheCaller(string kind, string id, string says)
    {
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());
        await using var hub = await host.ConnectAsync();

        var ex = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync("Subscribe", [kind, id], Ct));

        Assert.Contains(says, ex.Message, StringComparison.Ordinal);
        // The connection stays usable after a refused call.
        Assert.Equal(1, (await hub.InvokeAsync("Subscribe", ["stop", "S1"], Ct))!.Value.GetInt32());
    }

    [Fact]
    public async Task Hub_RouteByItsLongName_UnknownRoute()
    {
        var network = new FakeNetwork();
        await using var host = await TestHost.StartAsync(network: network);
        await using var hub = await host.ConnectAsync();

        var ex = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync("Subscribe", ["route", "Park loop"], Ct));

        Assert.Contains("unknown route 'Park loop'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("stop", "S0012")]
    [InlineData("vehicle", "nope")]
    public async Task SubscribeCommand_UnknownId_EndsAtOnceWithUsageExit(string kind, string id)
    {
        // fleet subscribe --stop S0012 used to wait forever; the hub refuses the id and the command says so.
        await using var host = await TestHost.StartAsync(network: new FakeNetwork());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        var exit = await Cli.SubscribeCommand.RunAsync(host.BaseUri, [(kind, id)], null, 1, TextWriter.Null, timeout.Token);

        Assert.Equal(2, exit);
        Assert.False(timeout.IsCancellationRequested, "fleet subscribe waited instead of saying the id is unknown");
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private static async Task AssertProblemAsync(HttpResponseMessage response, int status, string says)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == status, $"status {(int)response.StatusCode}, expected {status}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        Assert.Equal(status, json.RootElement.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("title").GetString()));
        Assert.Contains(says, json.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        AssertNoStackTrace(text, text);
    }

    private static void AssertNoStackTrace(string name, string text)
    {
        Assert.False(text.Contains("   at ", StringComparison.Ordinal) || text.Contains("Unhandled exception", StringComparison.Ordinal),
            $"{name}: a stack trace was printed:\n{text}");
    }

    private static Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args) => RunAsync(args, null);

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string[] args, string? workingDirectory)
    {
        var (exit, stdout, stderr) = await FleetProcess.RunFleetAsync(workingDirectory ?? Path.GetTempPath(), TimeSpan.FromSeconds(60), args);
        Assert.True(exit != -1, stderr);
        return (exit, stdout, stderr);
    }
}
