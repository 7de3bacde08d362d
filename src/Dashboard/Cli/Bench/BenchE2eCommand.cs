using Fleet.Tracking.Network;
using Fleet.Actors.Streams;
using Fleet.Actors.Partitions;
using Fleet.Actors.Hosting;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.HubClient;
using Fleet.Dashboard.Live;
using Fleet.Dashboard.Sources;
using Fleet.Gtfs;
using Fleet.Ingest.Events;
using Fleet.Ingest.Hfp;
using Fleet.Ingest.Recording;
using Fleet.Simulation;
using Fleet.Tracking;
using Fleet.Tracking.Output;
using Fleet.Tracking.Replay;
using Fleet.Tracking.Schedule;
using Fleet.Tracking.Vehicles;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet bench e2e</c>: the whole pipeline, end to end, on a generated 1,000-vehicle hour: throughput through
/// parse, shards, vehicles, map matching, predictions and the hub fan-out beside the parse-only rate; ingest-to-client
/// latency at 3,000 and 30,000 events/s; resident memory with 100,000 live vehicles; the SQLite journal on and off;
/// and the MQTT path against mosquitto_sub (<c>fleet bench mqtt</c>, run as a child process).
/// </summary>
internal static class BenchE2eCommand
{
    public static Command Create()
    {
        var cityDir = new Option<DirectoryInfo?>("--city-dir") { Description = "A folder made by fleet generate; generated into a temp folder when absent" };
        var json = new Option<bool>("--json") { Description = "Print one JSON line with the headline figures" };
        var journalEvents = new Option<int>("--journal-events") { Description = "Events through persistent tracking (the Akka.NET partitions), journal in memory and on SQLite", DefaultValueFactory = _ => 100_000 };
        var mqttMessages = new Option<int>("--mqtt-messages") { Description = "Messages of the MQTT comparison (0 skips it)", DefaultValueFactory = _ => 100_000 };
        var latencySeconds = new Option<double>("--latency-seconds") { Description = "Seconds of paced load per latency rate", DefaultValueFactory = _ => 5 };
        var latencyRoutes = new Option<int>("--latency-every-nth-route") { Description = "The latency client follows the whole map and every Nth route (1: every route, all the city's predictions)", DefaultValueFactory = _ => 6 };
        var latencyOnly = new Option<bool>("--latency-only") { Description = "Only the ingest-to-client latency rows (JSON: only their two fields)" };
        var journalOnly = new Option<bool>("--journal-only") { Description = "Only persistent tracking (serve --store's path on Akka.NET), journal in memory and on SQLite" };
        var compareOverlap = new Option<bool>("--compare-overlap") { Description = "Only the end-to-end throughput on 15 minutes of the hour, tracking batches serial and overlapped, two runs each (interleaved)" };
        var command = new Command("e2e",
            """
            Benchmark the whole pipeline on a generated 1,000-vehicle hour (the city of fleet bench replay): events/s
            through parse, shards, vehicles, map matching, predictions and the SignalR hub (one real WebSocket client
            subscribed to everything) beside parse only; ingest-to-client latency p50/p99/p99.9 at 3,000 and 30,000
            events/s; resident memory with 100,000 live vehicles; persistent tracking with the SQLite journal on and
            off; the MQTT path against mosquitto_sub. ./bench.sh runs it and rewrites docs/BENCHMARKS.md.

            Example: fleet bench e2e --json
            Example: fleet bench e2e --compare-overlap
            """)
        {
            cityDir, json, journalEvents, mqttMessages, latencySeconds, latencyRoutes, latencyOnly, compareOverlap, journalOnly,
        };
        command.SetAction(async (parse, ct) =>
        {
            var quiet = parse.GetValue(json);
            void Say(string line) => BenchOutput.Say(quiet, line);

            void SayLatency(string rate, Latency l)
            {
                Say(string.Create(CultureInfo.InvariantCulture, $"latency at {rate} events/s (predictions, ingest -> client) p50 {l.P50,6:F1} ms, p99 {l.P99,6:F1} ms, p99.9 {l.P999,6:F1} ms ({l.Samples:N0} samples, {l.Achieved:N0} events/s offered, {l.Unstamped} unstamped)"));
                Say(string.Create(CultureInfo.InvariantCulture, $"  server: ingest -> hub send p99 {l.QueueP99:F1} ms, -> written p99 {l.WrittenP99:F1} ms; vehicles (one batch per 250 ms) p50 {l.VehicleP50:F1} ms, p99 {l.VehicleP99:F1} ms; GC {l.Gcs} collections ({l.Gen2Gcs} gen 2), {l.GcPauseMs:F0} ms paused"));
            }

            if (parse.GetValue(latencyRoutes) < 1)
            {
                await Console.Error.WriteLineAsync("fleet bench e2e: --latency-every-nth-route must be 1 or more").ConfigureAwait(false);
                return 2;
            }

            BenchCity LoadCity() => LoadBenchCity(parse.GetValue(cityDir)?.FullName, 1, Say);

            if (parse.GetValue(latencyOnly))
            {
                var city = LoadCity();
                var l3 = await LatencyAsync(city, 3_000, parse.GetValue(latencySeconds), parse.GetValue(latencyRoutes), ct).ConfigureAwait(false);
                SayLatency(" 3,000", l3);
                var l30 = await LatencyAsync(city, 30_000, parse.GetValue(latencySeconds), parse.GetValue(latencyRoutes), ct).ConfigureAwait(false);
                SayLatency("30,000", l30);
                if (quiet)
                {
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $$"""{"latencyP99Ms3k":{{Math.Round(l3.P99, 1)}},"latencyP99Ms30k":{{Math.Round(l30.P99, 1)}}}"""));
                }

                return 0;
            }

            if (parse.GetValue(journalOnly))
            {
                var city = LoadCity();
                var n = parse.GetValue(journalEvents);
                for (var sqlite = false; ; sqlite = true)
                {
                    var rate = await AkkaJournalRateAsync(city.Recording, city.Schedule, n, sqlite, ct).ConfigureAwait(false);
                    Say(string.Create(CultureInfo.InvariantCulture, $"persistent tracking, {(sqlite ? "SQLite journal" : "journal in memory")}: {rate,10:N0} events/s"));
                    if (sqlite)
                    {
                        break;
                    }
                }

                return 0;
            }

            if (parse.GetValue(compareOverlap))
            {
                return await CompareOverlapAsync(parse.GetValue(cityDir)?.FullName, Say, ct).ConfigureAwait(false);
            }

            // Memory first, in a process that has not yet held the recording.
            var rssMb = await MeasureRssAsync(100_000, ct).ConfigureAwait(false);
            Say(string.Create(CultureInfo.InvariantCulture, $"resident memory, 100,000 live vehicles   {rssMb,10:N0} MB"));

            var bench = LoadCity();
            var (schedule, recording) = (bench.Schedule, bench.Recording);

            var (parsed, parseSeconds) = ParseOnly(recording);
            var parseRate = parsed / parseSeconds;
            Say(string.Create(CultureInfo.InvariantCulture, $"parse only                               {parseRate,10:N0} events/s ({parsed:N0} events, {parseSeconds:F2} s)"));

            var (e2eEvents, e2eSeconds, pushed, predictions) = await ServePathAsync(bench, ct).ConfigureAwait(false);
            var e2eRate = e2eEvents / e2eSeconds;
            Say(string.Create(CultureInfo.InvariantCulture, $"end to end (tracking, predictions, hub) {e2eRate,10:N0} events/s ({e2eSeconds:F2} s; ratio to parse only {e2eRate / parseRate:F2}; {predictions:N0} predictions, {pushed:N0} items pushed; serve's path: Akka.NET partitions)"));
            var (engineEvents, engineSeconds, enginePushed, enginePredictions) = await EndToEndAsync(recording, schedule, overlap: true, ct).ConfigureAwait(false);
            var engineRate = engineEvents / engineSeconds;
            Say(string.Create(CultureInfo.InvariantCulture, $"same, replay's deterministic engine    {engineRate,10:N0} events/s ({engineSeconds:F2} s; {enginePredictions:N0} predictions, {enginePushed:N0} items pushed; fleet replay --out-events)"));

            var latency3k = await LatencyAsync(bench, 3_000, parse.GetValue(latencySeconds), parse.GetValue(latencyRoutes), ct).ConfigureAwait(false);
            SayLatency(" 3,000", latency3k);
            var latency30k = await LatencyAsync(bench, 30_000, parse.GetValue(latencySeconds), parse.GetValue(latencyRoutes), ct).ConfigureAwait(false);
            SayLatency("30,000", latency30k);

            var count = parse.GetValue(journalEvents);
            var memoryRate = await AkkaJournalRateAsync(recording, schedule, count, sqlite: false, ct).ConfigureAwait(false);
            var sqliteRate = await AkkaJournalRateAsync(recording, schedule, count, sqlite: true, ct).ConfigureAwait(false);
            Say(string.Create(CultureInfo.InvariantCulture, $"persistent tracking, journal in memory  {memoryRate,10:N0} events/s"));
            Say(string.Create(CultureInfo.InvariantCulture, $"persistent tracking, SQLite journal     {sqliteRate,10:N0} events/s ({sqliteRate / memoryRate:P0} of in memory)"));

            double? mqttRatio = null;
            if (parse.GetValue(mqttMessages) is > 0 and var messages)
            {
                mqttRatio = await MqttRatioAsync(messages, ct).ConfigureAwait(false);
                Say(mqttRatio is { } r
                    ? string.Create(CultureInfo.InvariantCulture, $"MQTT receive + parse vs mosquitto_sub    ratio {r:F2} ({messages:N0} QoS 1 messages)")
                    : "MQTT comparison failed (needs mosquitto and mosquitto_sub)");
            }

            if (quiet)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $$"""{"e2eEventsPerSecond":{{Math.Round(e2eRate)}},"e2eReplayEngineEventsPerSecond":{{Math.Round(engineRate)}},"parseOnlyEventsPerSecond":{{Math.Round(parseRate)}},"mqttRatioVsMosquittoSub":{{(mqttRatio is { } x ? Math.Round(x, 3).ToString(CultureInfo.InvariantCulture) : "null")}},"latencyP99Ms3k":{{Math.Round(latency3k.P99, 1)}},"latencyP99Ms30k":{{Math.Round(latency30k.P99, 1)}},"rssMb100kVehicles":{{Math.Round(rssMb)}}}"""));
            }

            return 0;
        });
        return command;
    }

    private static (long Parsed, double Seconds) ParseOnly(byte[] recording)
    {
        var best = double.MaxValue;
        long parsed = 0;
        for (var run = 0; run < 2; run++)
        {
            var clock = Stopwatch.StartNew();
            var stream = new HfpStream();
            using (var reader = new RecordingReader(new MemoryStream(recording, writable: false), "bench"))
            {
                while (reader.TryRead(out var line))
                {
                    stream.Process(line, out _);
                }
            }

            best = Math.Min(best, clock.Elapsed.TotalSeconds);
            parsed = stream.Parsed;
        }

        return (parsed, best);
    }

    /// <summary>A real host (Kestrel on loopback, hub, flush loop) with one WebSocket client subscribed to the whole map, draining.</summary>
    private sealed class HubRig : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _drain;

        private HubRig(WebApplication app, LiveHubClient client, Action<HubMessage>? onMessage)
        {
            _app = app;
            Client = client;
            Live = app.Services.GetRequiredService<LiveEvents>();
            _drain = Task.Run(async () =>
            {
                try
                {
                    await foreach (var m in client.Messages.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                    {
                        onMessage?.Invoke(m);
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
        }

        public LiveEvents Live { get; }

        public LiveHubClient Client { get; }

        /// <summary>The host's tracking node (in memory).</summary>
        public TrackingCluster Cluster => _app.Services.GetRequiredService<TrackingCluster>();

        /// <summary>Starts the host and a client subscribed to the whole map (vehicles) and to <paramref name="routes"/>
        /// (their predictions); <paramref name="timing"/>, when given, times every push on the server.</summary>
        public static async Task<HubRig> StartAsync(Action<HubMessage>? onMessage, CancellationToken ct, SendTiming? timing = null, params string[] routes)
        {
            var (app, address) = await StartHostAsync(timing, ct).ConfigureAwait(false);
            var client = await LiveHubClient.ConnectAsync(new Uri(address + "/"), null, 4096, ct).ConfigureAwait(false);
            await client.InvokeAsync("Subscribe", ["bbox", "-180,-90,180,90"], ct).ConfigureAwait(false);
            foreach (var route in routes)
            {
                await client.InvokeAsync("Subscribe", ["route", route], ct).ConfigureAwait(false);
            }

            return new HubRig(app, client, onMessage);
        }

        /// <summary>The host alone (Kestrel on a free loopback port, the hub, the live state); its address.</summary>
        public static async Task<(WebApplication App, string Address)> StartHostAsync(SendTiming? timing, CancellationToken ct)
        {
            var app = FleetWebHost.Build(new ServeOptions { Urls = "http://127.0.0.1:0" }, s =>
            {
                s.AddSingleton(new LiveOptions { MaxVehicles = 200_000 });
                s.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
                if (timing is not null)
                {
                    s.AddSingleton<ILiveTransport>(sp => new TimedTransport(new HubLiveTransport(sp.GetRequiredService<IHubContext<LiveHub, ILiveClient>>()), timing));
                }
            });
            await app.StartAsync(ct).ConfigureAwait(false);
            return (app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await Client.DisposeAsync().ConfigureAwait(false);
            await _drain.ConfigureAwait(false);
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
            _stop.Dispose();
        }
    }

    // The city of fleet bench replay (generated once into a temp folder), and the given hours of it from 60 minutes
    // in (every vehicle on the road), decompressed into memory.
    internal sealed record BenchCity(Schedule Schedule, GtfsNetwork Network, byte[] Recording, string GtfsPath);

    internal static BenchCity LoadBenchCity(string? cityDir, double hours, Action<string> say)
    {
        var dir = cityDir ?? Path.Combine(Path.GetTempPath(), "fleet-bench-city-1000-3-60");
        if (!File.Exists(Path.Combine(dir, CityGenerator.RecordingFileName)))
        {
            say($"generating the city into {dir} ...");
            CityGenerator.Generate(new GenerateOptions { Vehicles = 1000, Hours = 3, Routes = 60 }, dir);
        }

        var gtfsPath = Path.Combine(dir, CityGenerator.GtfsFileName);
        var network = GtfsNetwork.Load(gtfsPath);
        var recording = BenchReplayCommand.Decompress(Path.Combine(dir, CityGenerator.RecordingFileName), 60, hours, out var slice);
        say(string.Create(CultureInfo.InvariantCulture, $"input: {recording.Length / 1e6:F1} MB ({slice}), {network.Schedule.Trips.Count} trips, {Environment.ProcessorCount} cores"));
        return new BenchCity(network.Schedule, network, recording, gtfsPath);
    }

    // --compare-overlap: the end-to-end figure with tracking batches run serially (as before issue 9's change: a
    // batch runs between two lines, plus a flush every 65,536 lines) and overlapped, interleaved so that the load of
    // a shared machine hits both alike.
    private static async Task<int> CompareOverlapAsync(string? cityDir, Action<string> say, CancellationToken ct)
    {
        // A quarter of the hour the full run uses (from the same minute), so that four runs stay short.
        var (schedule, _, recording, _) = LoadBenchCity(cityDir, 0.25, say);
        foreach (var overlap in new[] { false, true, false, true })
        {
            var (events, seconds, pushed, predictions) = await EndToEndAsync(recording, schedule, overlap, ct).ConfigureAwait(false);
            say(string.Create(CultureInfo.InvariantCulture,
                $"end to end, batches {(overlap ? "overlapped" : "serial    ")}  {events / seconds,10:N0} events/s ({events:N0} events, {seconds:F2} s; {predictions:N0} predictions, {pushed:N0} items pushed)"));
        }

        return 0;
    }

    /// <summary>
    /// What <c>fleet serve</c> does per line of a live source, as fast as it goes: parse, the position to the map, the
    /// event through the live pipeline's flush loop into the node's Akka.NET partitions (Akka.Streams, batches per
    /// partition, acknowledged) and what they derive (arrivals, predictions) into the live state, the hub pushing to a
    /// client subscribed to the whole map. Timed until the partitions tracked the last event and the sink published it.
    /// </summary>
    private static async Task<(long Events, double Seconds, long Pushed, long Predictions)> ServePathAsync(BenchCity city, CancellationToken ct)
    {
        await using var rig = await HubRig.StartAsync(null, ct).ConfigureAwait(false);
        var time = TimeProvider.System;
        var pipeline = new LivePipeline(rig.Live, city.Network, time, cluster: rig.Cluster);
        using var loopStop = new CancellationTokenSource();
        var loop = pipeline.RunAsync(loopStop.Token);
        await pipeline.FlushAsync(ct).ConfigureAwait(false); // the region and the stream are up before the clock starts
        var hfp = new HfpStream();
        long events = 0;
        var clock = Stopwatch.StartNew();
        using (var reader = new RecordingReader(new MemoryStream(city.Recording, writable: false), "bench"))
        {
            while (reader.TryRead(out var line))
            {
                if (BenchIngest.Line(line, hfp, pipeline, rig.Live, time))
                {
                    events++;
                }
            }
        }

        await pipeline.FlushAsync(ct).ConfigureAwait(false);
        var seconds = clock.Elapsed.TotalSeconds;
        await loopStop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        if (pipeline.Stream is not { } stream || stream.Journaled == 0)
        {
            throw new InvalidOperationException("the partitions tracked nothing");
        }

        return (events, seconds, rig.Live.Metrics.ItemsPushed, rig.Live.Metrics.Predictions);
    }

    /// <summary>The replay's deterministic composition (<c>TrackingEngine</c>, as <c>fleet replay --out-events</c> runs), per line, as fast as it goes: tracking with predictions into the live state, positions to the map, the hub pushing.</summary>
    private static async Task<(long Events, double Seconds, long Pushed, long Predictions)> EndToEndAsync(byte[] recording, Schedule schedule, bool overlap, CancellationToken ct)
    {
        await using var rig = await HubRig.StartAsync(null, ct).ConfigureAwait(false);
        // Overlap: a batch's partitions run while the next batch is parsed and its positions published, as in
        // `fleet bench replay` (same output; the counters are safe to read meanwhile).
        var engine = new TrackingEngine(new GtfsTripCatalog(schedule), new TrackingOptions(), new LiveTrackingOutput(rig.Live), partitions: 0,
            predictor: new DelayCarriedForwardPredictor())
        {
            OverlapBatches = overlap,
        };
        var replay = new TrackingReplay(engine, schedule);
        var stream = new HfpStream();
        var clock = Stopwatch.StartNew();
        using (var reader = new RecordingReader(new MemoryStream(recording, writable: false), "bench"))
        {
            // Batches are cut by count (32,768 events); overlapped, each is published as the next one starts, and a
            // periodic flush would run one without overlap. Serial runs keep the flush every 65,536 lines they had.
            long n = 0;
            while (reader.TryRead(out var line))
            {
                replay.Process(line);
                if (stream.Process(line, out var ev) == HfpOutcome.Event)
                {
                    rig.Live.Metrics.CountEvent(ev.EventTime);
                    if (VehicleState.FromEvent(ev) is { } state)
                    {
                        rig.Live.PublishVehicle(state);
                    }
                }

                if (!overlap && (++n & 0xFFFF) == 0)
                {
                    replay.Flush();
                }
            }
        }

        replay.Complete();
        var seconds = clock.Elapsed.TotalSeconds;
        return (stream.Parsed, seconds, rig.Live.Metrics.ItemsPushed, rig.Live.Metrics.Predictions);
    }

    private readonly record struct Latency(double P50, double P99, double P999, long Samples, double Achieved,
        double VehicleP50, double VehicleP99, double QueueP99, double WrittenP99, double GcPauseMs, int Gcs, int Gen2Gcs, long Unstamped);

    /// <summary>
    /// The generated city's lines, read and ingested at <paramref name="rate"/> per second through what
    /// <c>fleet serve</c> runs for a live source: parse, the live pipeline (tracking with the live options, nothing
    /// held, woken by each event), the live state and the hub, to one real WebSocket client subscribed to the whole
    /// map and to every route. Each line is stamped with the wall clock when it is read; the stamp travels through
    /// tracking to the predictions it causes (<see cref="IngestStampingOutput"/>), and the client measures receive
    /// time minus that stamp for every prediction (their own push lane) and, separately, for every vehicle (at most
    /// one batch per 250 ms by rule). The server times each push too. Before the paced part, a stretch of the city is
    /// ingested unpaced (vehicles on their trips); the first second at the rate warms up and is not counted.
    /// </summary>
    private static async Task<Latency> LatencyAsync(BenchCity city, int rate, double seconds, int everyNthRoute, CancellationToken ct)
    {
        var (recording, network, gtfsPath) = (city.Recording, city.Network, city.GtfsPath);
        var timing = new SendTiming((int)(rate * (seconds + 2)));
        var warmUp = (long)rate;
        var gcPause0 = TimeSpan.Zero;
        int gc0 = 0, gen20 = 0;
        var (app, address) = await HubRig.StartHostAsync(timing, ct).ConfigureAwait(false);
        await using var _ = app.ConfigureAwait(false);
        var live = app.Services.GetRequiredService<LiveEvents>();
        var time = TimeProvider.System;
        var stamping = new IngestStampingOutput(new LiveTrackingOutput(live), time);
        var pipeline = new LivePipeline(live, network, time, output: stamping, cluster: app.Services.GetRequiredService<TrackingCluster>());
        using var loopStop = new CancellationTokenSource();
        var loop = pipeline.RunAsync(loopStop.Token);
        var hfp = new HfpStream();
        using var reader = new RecordingReader(new MemoryStream(recording, writable: false), "bench");
        // Ten minutes of the city unpaced (about 50,000 lines): vehicles on their trips, predictions flowing.
        for (var n = 0; n < 50_000 && reader.TryRead(out var line); n++)
        {
            BenchIngest.Line(line, hfp, pipeline, live, time);
        }

        pipeline.Flush();
        // The client lives in its own process (fleet bench hub --clients-of ... --everything), so this process's
        // garbage collector and threads are the server's alone, as with a real deployment.
        using var child = BenchHubCommand.StartClients(address, gtfsPath, 1, everyNthRoute);
        var ready = await child.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false);
        if (ready != "ready")
        {
            throw new InvalidOperationException($"the client process failed: {ready} {await child.StandardError.ReadToEndAsync(ct).ConfigureAwait(false)}");
        }

        // The client starts measuring a second after "ready"; the first second at the rate is that warm-up.
        var total = warmUp + (long)(rate * seconds);
        long i = 0;
        var clock = Stopwatch.StartNew();
        while (i < total && reader.TryRead(out var line))
        {
            if (i == warmUp)
            {
                timing.Start();
                gcPause0 = GC.GetTotalPauseDuration();
                gc0 = GC.CollectionCount(0);
                gen20 = GC.CollectionCount(2);
            }

            // A ref struct line cannot cross an await: ingest it, then wait for the next one's turn (1 ms steps).
            if (BenchIngest.Line(line, hfp, pipeline, live, time))
            {
                i++;
            }

            var due = i / (double)rate;
            if (due > clock.Elapsed.TotalSeconds + 0.001)
            {
                await Task.Delay(TimeSpan.FromSeconds(due - clock.Elapsed.TotalSeconds), ct).ConfigureAwait(false);
            }
        }

        var achieved = i / clock.Elapsed.TotalSeconds;
        var gcPause = (GC.GetTotalPauseDuration() - gcPause0).TotalMilliseconds;
        var gcs = GC.CollectionCount(0) - gc0;
        var gen2 = GC.CollectionCount(2) - gen20;
        // Let the last batches arrive, then ask the client for its figures.
        await Task.Delay(TimeSpan.FromMilliseconds(750), ct).ConfigureAwait(false);
        await child.StandardInput.WriteLineAsync("stop").ConfigureAwait(false);
        await child.StandardInput.FlushAsync(ct).ConfigureAwait(false);
        var result = await child.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException("the client process gave no result");
        await child.WaitForExitAsync(ct).ConfigureAwait(false);
        await loopStop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(result);
        var r = doc.RootElement;
        return new Latency(r.GetProperty("p50").GetDouble(), r.GetProperty("p99").GetDouble(), r.GetProperty("p999").GetDouble(),
            r.GetProperty("predictions").GetInt64(), achieved, r.GetProperty("vehicleP50").GetDouble(), r.GetProperty("vehicleP99").GetDouble(),
            timing.QueueP99, timing.WrittenP99, gcPause, gcs, gen2, stamping.Unstamped);
    }

    /// <summary>Resident memory with <paramref name="vehicles"/> vehicles live in tracking (Akka.NET partitions, journal in memory) and in the live state (map).</summary>
    private static async Task<double> MeasureRssAsync(int vehicles, CancellationToken ct)
    {
        await using var rig = await HubRig.StartAsync(null, ct).ConfigureAwait(false);
        var catalog = new InMemoryTripCatalog();
        var options = rig.Cluster.Options;
        var system = await rig.Cluster.GetSystemAsync().ConfigureAwait(false);
        var region = await FleetAkka.StartRegionAsync(system, options, new TrackingDomain(catalog, new TrackingOptions())).ConfigureAwait(false);
        var host = TrackingStream.Start(system, region, options.Partitions, new NetworkTracker(new TrackingOptions(), catalog), new NullOutput());
        var now = DateTime.UtcNow;
        for (var i = 0; i < vehicles; i++)
        {
            var e = VehicleEvent.Empty;
            e.Type = EventType.Vp;
            e.Source = EventSource.Hfp;
            e.Mode = TransportMode.Bus;
            e.VehicleId = $"{i / 100_000:D4}/{i % 100_000:D5}";
            e.EventTime = e.ReceiveTime = now;
            e.Latitude = 60 + (i % 1000) * 1e-4;
            e.Longitude = 24.9 + (i / 1000) * 1e-4;
            await host.OfferAsync(e, 0, ct).ConfigureAwait(false);
            if (VehicleState.FromEvent(e) is { } state)
            {
                rig.Live.PublishVehicle(state);
            }
        }

        // Wait until every partition has its vehicles, then measure (the stream stays open: the state stays live).
        while (host.Pending > 0)
        {
            await Task.Delay(50, ct).ConfigureAwait(false);
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        var rss = self.WorkingSet64 / (1024.0 * 1024.0);
        await host.DisposeAsync().ConfigureAwait(false);
        return rss;
    }

    internal sealed class NullOutput : ITrackingOutput
    {
        public void Publish(DerivedEvent derived)
        {
        }
    }

    /// <summary>
    /// The first <paramref name="count"/> HFP events through serve --store's path on Akka.NET: the tracking stream into
    /// the sharded partitions, journaled in memory or on SQLite (Akka.Persistence.Sql), until the last is published.
    /// </summary>
    private static async Task<double> AkkaJournalRateAsync(byte[] recording, Schedule schedule, int count, bool sqlite, CancellationToken ct)
    {
        var events = FirstEvents(recording, count);
        var dir = Directory.CreateTempSubdirectory("fleet-bench-akka-journal-");
        try
        {
            var options = sqlite ? new FleetAkkaOptions { Journal = JournalKind.Sqlite, Connection = Path.Combine(dir.FullName, "journal.db") } : new FleetAkkaOptions();
            var cluster = new TrackingCluster(options);
            await using (cluster.ConfigureAwait(false))
            {
                var system = await cluster.GetSystemAsync().ConfigureAwait(false);
                var catalog = new GtfsTripCatalog(schedule);
                var region = await FleetAkka.StartRegionAsync(system, options, new TrackingDomain(catalog, new TrackingOptions(), new DelayCarriedForwardPredictor())).ConfigureAwait(false);
                var clock = Stopwatch.StartNew();
                var stream = TrackingStream.Start(system, region, options.Partitions, new NetworkTracker(new TrackingOptions(), catalog), new NullOutput());
                long sequence = 0;
                foreach (var e in events)
                {
                    await stream.OfferAsync(e, ++sequence, ct).ConfigureAwait(false);
                }

                await stream.DisposeAsync().ConfigureAwait(false);
                return events.Count / clock.Elapsed.TotalSeconds;
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            dir.Delete(recursive: true);
        }
    }

    internal static List<VehicleEvent> FirstEvents(byte[] recording, int count)
    {
        var events = new List<VehicleEvent>(count);
        var stream = new HfpStream();
        using (var reader = new RecordingReader(new MemoryStream(recording, writable: false), "bench"))
        {
            while (events.Count < count && reader.TryRead(out var line))
            {
                if (stream.Process(line, out var ev) == HfpOutcome.Event)
                {
                    events.Add(ev);
                }
            }
        }

        return events;
    }

    /// <summary>Runs <c>fleet bench mqtt --messages N --rounds 1 --json</c> and reads its ratio.</summary>
    private static async Task<double?> MqttRatioAsync(int messages, CancellationToken ct)
    {
        var self = Environment.GetCommandLineArgs()[0];
        var info = new ProcessStartInfo(self.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? "dotnet" : self)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (self.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            info.ArgumentList.Add(self);
        }

        foreach (var a in new[] { "bench", "mqtt", "--messages", messages.ToString(CultureInfo.InvariantCulture), "--rounds", "1", "--json" })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info);
        if (process is null)
        {
            return null;
        }

        var stderr = process.StandardError.ReadToEndAsync(ct);
        var output = await process.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        await stderr.ConfigureAwait(false);
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault(l => l.StartsWith('{'));
        if (process.ExitCode != 0 || last is null)
        {
            return null;
        }

        using var doc = JsonDocument.Parse(last);
        return doc.RootElement.GetProperty("ratio").GetDouble();
    }
}
