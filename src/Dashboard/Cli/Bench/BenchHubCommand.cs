using Fleet.Actors.Hosting;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.HubClient;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Tracking.Output;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench hub</c>: the hub under many WebSocket clients. This process runs the real host (Kestrel, the hub,
/// the live fan-out) and feeds it the sample city through the live pipeline (with tracking, so predictions flow);
/// a child process holds the clients, each subscribed to one stop or one route, and measures, per pushed prediction,
/// the time from the ingest of the report that caused it (a recording line read; the stamp travels through tracking,
/// see <see cref="IngestStampingOutput"/>, and arrives as the prediction's <c>updated</c> field) to its receipt;
/// vehicles (batched by rule at most once per 250 ms per client) are reported beside it.
/// </summary>
/// <remarks>
/// Clients live in another process so that this process's CPU time is the hub's (ingest, tracking, fan-out,
/// serialization, sockets), not the clients'. Both run on the same machine, so their wall clocks agree.
/// </remarks>
internal static class BenchHubCommand
{
    private const string ReadyLine = "ready";

    public static Command Create()
    {
        var clients = new Option<int>("--clients") { Description = "WebSocket clients (half on routes, half on stops).", DefaultValueFactory = _ => 1000 };
        var seconds = new Option<double>("--seconds") { Description = "Measured seconds.", DefaultValueFactory = _ => 30 };
        var speed = new Option<double>("--speed") { Description = "Replay speed of the sample city (1 = its real rate).", DefaultValueFactory = _ => 1 };
        var skip = new Option<double>("--skip") { Description = "Fraction of the recording ingested unpaced before the clients connect (a city in full swing).", DefaultValueFactory = _ => 0.4 };
        var batchMs = new Option<int>("--batch-ms") { Description = "Hub batch interval per client in ms (250 in production).", DefaultValueFactory = _ => (int)new LiveOptions().BatchInterval.TotalMilliseconds };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object." };
        var clientsOf = new Option<string?>("--clients-of") { Description = "(internal) run only the clients against this server URL.", Hidden = true };
        var gtfs = new Option<string?>("--gtfs") { Description = "(internal) the GTFS the clients pick their stops and routes from.", Hidden = true };
        var everything = new Option<int>("--everything") { Description = "(internal) with --clients-of: each client subscribes to the whole map and to every Nth route (1: all routes); 0: one stop or route per client.", Hidden = true };
        var cmd = new Command("hub", """
            Loopback WebSocket clients, each subscribed to a stop or a route, on the hub while the sample city plays;
            reports p50/p99 from ingest to client receive, items pushed, and the hub process's CPU share.

            Example: fleet bench hub --clients 1000 --seconds 30 --json
            """)
        {
            clients, seconds, speed, skip, batchMs, json, clientsOf, gtfs, everything,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var n = parse.GetValue(clients);
            var s = parse.GetValue(seconds);
            if (n is < 1 or > 20_000 || !(s is > 0 and <= 600))
            {
                await Console.Error.WriteLineAsync("fleet bench hub: --clients must be 1..20000 and --seconds 0..600").ConfigureAwait(false);
                return 2;
            }

            if (parse.GetValue(clientsOf) is { } url)
            {
                return await RunClientsAsync(new Uri(url), parse.GetValue(gtfs)!, n, parse.GetValue(everything), ct).ConfigureAwait(false);
            }

            var sp = parse.GetValue(speed);
            var sk = parse.GetValue(skip);
            var batch = parse.GetValue(batchMs);
            if (!(sp is > 0 and <= ReplayOptions.MaxSpeed) || !(sk is >= 0 and < 1) || batch is < 0 or > 10_000)
            {
                await Console.Error.WriteLineAsync("fleet bench hub: --speed must be in (0, 1000], --skip in [0, 1), --batch-ms in [0, 10000]").ConfigureAwait(false);
                return 2;
            }

            return await RunAsync(n, TimeSpan.FromSeconds(s), sp, sk, TimeSpan.FromMilliseconds(batch), parse.GetValue(json), ct).ConfigureAwait(false);
        });
        return cmd;
    }

    private static async Task<int> RunAsync(int clients, TimeSpan duration, double speed, double skip, TimeSpan batch, bool json, CancellationToken ct)
    {
        if (ServeCommand.FindSample() is not { } recording || Path.Combine(Path.GetDirectoryName(recording)!, "gtfs.zip") is not { } gtfsPath || !File.Exists(gtfsPath))
        {
            await Console.Error.WriteLineAsync("fleet bench hub: needs sample-data/recording.hfp.gz and sample-data/gtfs.zip").ConfigureAwait(false);
            return 1;
        }

        var network = GtfsNetwork.Load(gtfsPath);
        var liveOptions = new LiveOptions { BatchInterval = batch, Tick = TimeSpan.FromMilliseconds(Math.Clamp(batch.TotalMilliseconds / 5, 1, 10)) };
        var timing = new SendTiming();
        await using var app = FleetWebHost.Build(new ServeOptions { Urls = "http://127.0.0.1:0" }, s =>
        {
            s.AddSingleton<ITransitNetwork>(network);
            s.AddSingleton(liveOptions);
            s.AddSingleton<ILiveTransport>(sp => new TimedTransport(new HubLiveTransport(sp.GetRequiredService<IHubContext<LiveHub, ILiveClient>>()), timing));
            s.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
        });
        await app.StartAsync(ct).ConfigureAwait(false);
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var live = app.Services.GetRequiredService<LiveEvents>();
        var status = app.Services.GetRequiredService<SourceRegistry>().Register("bench", "replay");
        var time = TimeProvider.System;
        var clock = new RecordedClock();
        // Predictions carry the wall clock of their input's ingest (live tracking: nothing held); the pipeline's flush
        // loop runs as with serve's live sources, woken by each event.
        var stamping = new IngestStampingOutput(new LiveTrackingOutput(live), time) { OnPrediction = clock.Hold };
        var pipeline = new LivePipeline(live, network, time, output: stamping, cluster: app.Services.GetRequiredService<TrackingCluster>());
        using var loopStop = new CancellationTokenSource();
        var loop = pipeline.RunAsync(loopStop.Token);
        var hfp = new HfpStream();

        using var reader = RecordingReader.Open(recording);
        // Warm-up: the city up to --skip, unpaced, so vehicles, trips and predictions exist when the clients come.
        while ((reader.Progress ?? 1) < skip && reader.TryRead(out var line))
        {
            clock.Now = line.ReceiveTime;
            BenchIngest.Line(line, hfp, pipeline, live, time, status);
        }

        pipeline.Flush();
        Progress(json, $"warm: {live.VehicleCount} vehicles, {live.PredictionCount} predictions; starting {clients} clients");

        using var child = StartClients(baseUrl, gtfsPath, clients);
        var ready = await child.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false);
        if (ready != ReadyLine)
        {
            await Console.Error.WriteLineAsync($"fleet bench hub: the client process failed: {ready} {await child.StandardError.ReadToEndAsync(ct).ConfigureAwait(false)}").ConfigureAwait(false);
            return 1;
        }

        Progress(json, $"{live.ClientCount} clients subscribed; measuring {duration.TotalSeconds:0} s at speed {speed}");
        var self = Process.GetCurrentProcess();
        self.Refresh();
        var cpu0 = self.TotalProcessorTime;
        var events0 = live.Metrics.Events;
        var items0 = live.Metrics.ItemsPushed;
        var missed0 = live.Metrics.MissedBatches;
        timing.Start();
        clock.Measuring = true;
        var wall = Stopwatch.StartNew();
        DateTime? anchorRecorded = null;
        while (wall.Elapsed < duration && reader.TryRead(out var line))
        {
            if (line.Kind != RecordKind.Message)
            {
                continue;
            }

            anchorRecorded ??= line.ReceiveTime;
            clock.Now = line.ReceiveTime;
            var due = TimeSpan.FromTicks((long)((line.ReceiveTime - anchorRecorded.Value).Ticks / speed));
            var wait = due - wall.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(2))
            {
                // A ref struct line cannot cross an await: ingest first, then wait for the next one's turn.
                BenchIngest.Line(line, hfp, pipeline, live, time, status);
                await Task.Delay(wait, ct).ConfigureAwait(false);
                continue;
            }

            BenchIngest.Line(line, hfp, pipeline, live, time, status);
        }

        var elapsed = wall.Elapsed;
        clock.Measuring = false;
        await loopStop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        self.Refresh();
        var cpu = self.TotalProcessorTime - cpu0;
        var events = live.Metrics.Events - events0;
        var items = live.Metrics.ItemsPushed - items0;
        var missed = live.Metrics.MissedBatches - missed0;

        await child.StandardInput.WriteLineAsync("stop").ConfigureAwait(false);
        await child.StandardInput.FlushAsync(ct).ConfigureAwait(false);
        var resultLine = await child.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false);
        await child.WaitForExitAsync(ct).ConfigureAwait(false);
        // The clients closed their connections on the way out; let the hub finish their disconnects before it stops.
        for (var waited = 0; live.ClientCount > 0 && waited < 100; waited++)
        {
            await Task.Delay(50, ct).ConfigureAwait(false);
        }

        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        if (resultLine is null)
        {
            await Console.Error.WriteLineAsync("fleet bench hub: the client process gave no result").ConfigureAwait(false);
            return 1;
        }

        using var doc = JsonDocument.Parse(resultLine);
        var r = doc.RootElement;
        var result = new
        {
            clients,
            seconds = Math.Round(elapsed.TotalSeconds, 1),
            speed,
            batchMs = batch.TotalMilliseconds,
            eventsPerSecond = Math.Round(events / elapsed.TotalSeconds, 1),
            vehicles = live.VehicleCount,
            itemsPushed = items,
            missedBatches = missed,
            itemsReceived = r.GetProperty("items").GetInt64(),
            predictionsReceived = r.GetProperty("predictions").GetInt64(),
            latencyP50Ms = r.GetProperty("p50").GetDouble(),
            latencyP99Ms = r.GetProperty("p99").GetDouble(),
            latencyMaxMs = r.GetProperty("max").GetDouble(),
            hubQueueP99Ms = timing.QueueP99,
            hubWriteP99Ms = timing.WrittenP99,
            vehicleLatencyP50Ms = r.GetProperty("vehicleP50").GetDouble(),
            vehicleLatencyP99Ms = r.GetProperty("vehicleP99").GetDouble(),
            trackingHoldP50Seconds = Math.Round(clock.HoldP50Seconds(speed), 1),
            hubCpuSeconds = Math.Round(cpu.TotalSeconds, 2),
            hubCpuShareOfOneCore = Math.Round(cpu.TotalSeconds / elapsed.TotalSeconds, 3),
            hubCpuShareOfMachine = Math.Round(cpu.TotalSeconds / elapsed.TotalSeconds / Environment.ProcessorCount, 3),
            clientCpuSeconds = r.GetProperty("cpu").GetDouble(),
            cores = Environment.ProcessorCount,
        };
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(result));
        }
        else
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{clients} clients, {result.seconds} s at speed {speed} ({result.eventsPerSecond} events/s, {result.vehicles} vehicles), batch {result.batchMs} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"predictions, ingest (line read) -> client receive: p50 {result.latencyP50Ms} ms, p99 {result.latencyP99Ms} ms, max {result.latencyMaxMs} ms over {result.predictionsReceived} items"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  of which: into the live state -> hub send p99 {result.hubQueueP99Ms} ms, -> written to the socket p99 {result.hubWriteP99Ms} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  tracking held an event p50 {result.trackingHoldP50Seconds} s of wall time (live options: nothing held; recorded time of the line being read minus the prediction's event time, at this speed); {stamping.Unstamped} predictions without an ingest stamp"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"vehicles (at most one batch per {result.batchMs} ms per client): p50 {result.vehicleLatencyP50Ms} ms, p99 {result.vehicleLatencyP99Ms} ms; {result.itemsReceived} items in all"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"hub process CPU: {result.hubCpuSeconds} s = {result.hubCpuShareOfOneCore:P1} of one core ({result.hubCpuShareOfMachine:P1} of {result.cores} cores); clients' process {result.clientCpuSeconds} s"));
        }

        return 0;
    }

    private static void Progress(bool json, string message)
    {
        if (!json)
        {
            Console.Error.WriteLine("bench hub: " + message);
        }
    }

    /// <summary>Starts the client process (<c>fleet bench hub --clients-of</c>); it prints "ready", then one JSON line
    /// after "stop" on its stdin.</summary>
    internal static Process StartClients(string baseUrl, string gtfs, int clients, int everyNthRoute = 0)
    {
        var exe = Environment.ProcessPath!;
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            info.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
        }

        foreach (var a in new[] { "bench", "hub", "--clients-of", baseUrl, "--gtfs", gtfs, "--clients", clients.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        if (everyNthRoute > 0)
        {
            info.ArgumentList.Add("--everything");
            info.ArgumentList.Add(everyNthRoute.ToString(CultureInfo.InvariantCulture));
        }

        return Process.Start(info) ?? throw new InvalidOperationException("cannot start the client process");
    }

    // The child: connects the clients, says "ready", measures until "stop" on stdin, prints one JSON line.
    private static async Task<int> RunClientsAsync(Uri baseUrl, string gtfs, int count, int everyNthRoute, CancellationToken ct)
    {
        var network = GtfsNetwork.Load(gtfs);
        var routes = network.Routes.Select(r => r.Id).ToArray();
        var stops = network.Schedule.Stops.Select(s => s.Id).ToArray();
        var connections = new LiveHubClient[count];
        using var gate = new SemaphoreSlim(32);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                var c = await LiveHubClient.ConnectAsync(baseUrl, null, 4096, ct).ConfigureAwait(false);
                if (everyNthRoute > 0)
                {
                    await c.InvokeAsync("Subscribe", ["bbox", "-180,-90,180,90"], ct).ConfigureAwait(false);
                    foreach (var route in routes.Where((_, k) => k % everyNthRoute == 0).Take(new LiveOptions().MaxSubscriptionsPerClient - 1))
                    {
                        await c.InvokeAsync("Subscribe", ["route", route], ct).ConfigureAwait(false);
                    }
                }
                else
                {
                    object?[] subscription = i % 2 == 0 ? ["route", routes[i / 2 % routes.Length]] : ["stop", stops[i / 2 % stops.Length]];
                    await c.InvokeAsync("Subscribe", subscription, ct).ConfigureAwait(false);
                }

                connections[i] = c;
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var measuring = 0; // set once the initial views (queued at subscribe) have been drained
        var latencies = new List<double>[count];
        var vehicleLatencies = new List<double>[count];
        var readers = connections.Select((c, i) => Task.Run(async () =>
        {
            var predictions = latencies[i] = new List<double>(4096);
            var vehicles = vehicleLatencies[i] = new List<double>(4096);
            try
            {
                await foreach (var m in c.Messages.ReadAllAsync(stop.Token).ConfigureAwait(false))
                {
                    if (Volatile.Read(ref measuring) == 0 || m.Arguments.Length == 0 || m.Arguments[0].ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }

                    var mine = m.Target == LiveMethods.Predictions ? predictions : m.Target == LiveMethods.Vehicles ? vehicles : null;
                    if (mine is null)
                    {
                        continue;
                    }

                    foreach (var item in m.Arguments[0].EnumerateArray())
                    {
                        if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("updated", out var u) && u.TryGetDateTime(out var updated))
                        {
                            mine.Add((m.Received - updated.ToUniversalTime()).TotalMilliseconds);
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToArray();

        var self = Process.GetCurrentProcess();
        await Console.Out.WriteLineAsync(ReadyLine).ConfigureAwait(false);
        await Console.Out.FlushAsync(ct).ConfigureAwait(false);
        // Items of the initial views were stamped before the clients existed; measure from the first full batch on.
        await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
        self.Refresh();
        var cpu0 = self.TotalProcessorTime;
        Volatile.Write(ref measuring, 1);
        _ = await Console.In.ReadLineAsync(ct).ConfigureAwait(false);
        self.Refresh();
        var cpu = self.TotalProcessorTime - cpu0;
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(readers).ConfigureAwait(false);
        var all = latencies.SelectMany(l => l).Order().ToArray();
        var cars = vehicleLatencies.SelectMany(l => l).Order().ToArray();
        await Console.Out.WriteLineAsync(JsonSerializer.Serialize(new
        {
            items = all.Length + cars.Length,
            predictions = all.Length,
            p50 = Percentile(all, 0.50),
            p99 = Percentile(all, 0.99),
            p999 = Percentile(all, 0.999),
            max = all.Length == 0 ? double.NaN : Math.Round(all[^1], 1),
            vehicleP50 = Percentile(cars, 0.50),
            vehicleP99 = Percentile(cars, 0.99),
            cpu = Math.Round(cpu.TotalSeconds, 2),
        })).ConfigureAwait(false);
        await Task.WhenAll(connections.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        return 0;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)], 1);

    /// <summary>The recorded receive time of the line being ingested, and the holds of tracking measured against it.</summary>
    private sealed class RecordedClock
    {
        private readonly List<double> _holds = [];

        public DateTime Now { get; set; }

        public bool Measuring { get; set; }

        public void Hold(DateTime eventTime)
        {
            if (Measuring)
            {
                _holds.Add((Now - eventTime).TotalSeconds);
            }
        }

        // Recorded seconds at --speed 1; a faster replay holds for a proportionally shorter wall time.
        public double HoldP50Seconds(double speed) =>
            _holds.Count == 0 ? double.NaN : _holds.Order().ElementAt(_holds.Count / 2) / speed;
    }
}
