using System.CommandLine;
using System.Globalization;
using Fleet.Actors.Hosting;
using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Sources;
using Fleet.Tracking;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Cli;

/// <summary><c>fleet serve</c>: the platform host (sources, the live fan-out, the hub, the API and the page).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls")
        {
            Description = "Addresses to listen on, ';'-separated (loopback by default).",
            DefaultValueFactory = _ => ServeOptions.DefaultUrls,
        };
        var apiKey = new Option<string?>("--api-key") { Description = "Require this key on the API, hub and /metrics (X-Api-Key header, Bearer or access_token)." };
        var tileUrl = new Option<string?>("--tile-url") { Description = "The page's base map tiles, a URL template ({z}/{x}/{y}); default OpenStreetMap's standard tiles; 'none' for none." };
        var otlp = new Option<string?>("--otlp") { Description = "Also push metrics to an OpenTelemetry collector by OTLP over HTTP (e.g. http://127.0.0.1:4318; /v1/metrics is added to a URL without a path)." };
        var otlpInterval = new Option<double>("--otlp-interval") { Description = "Seconds between two pushes to --otlp.", DefaultValueFactory = _ => 15 };
        var replay = new Option<string?>("--replay") { Description = "Replay a recording (HSL dump lines, .gz or plain), event times shifted to now." };
        var speed = new Option<double>("--speed") { Description = "Replay speed (1 = real time).", DefaultValueFactory = _ => 1 };
        var loop = new Option<bool>("--loop") { Description = "Start the replay again at its end." };
        var replayStart = new Option<double>("--replay-start") { Description = $"Where the replay's first round starts, as a fraction of the file from 0 to 1 (default 0)." };
        var gtfs = new Option<string?>("--gtfs") { Description = "GTFS static feed (zip or folder): base map, routes, stops and schedule." };
        var store = new Option<string?>("--store") { Description = "Persist vehicle state: sqlite:PATH or postgres:CONNSTR (default with no options: sqlite:.fleet/fleet.db); a restart on the same store resumes." };
        var keepJournal = new Option<bool>("--keep-journal") { Description = "With --store: keep every journaled batch (an audit trail) instead of deleting what each partition's newest snapshot covers." };
        var clusterNode = new Option<string?>("--cluster") { Description = "Run as a node of the Akka.NET cluster 'fleet', listening on HOST:PORT (needs --store postgres:...); without --seed it forms the cluster as its own seed." };
        var seed = new Option<string[]>("--seed") { Description = "HOST:PORT of a seed node of the cluster to join (with --cluster); repeatable. Give every node the same list." };
        var mqtt = new Option<string[]>("--mqtt") { Description = "Subscribe to an MQTT broker (mqtt://[user:pass@]host[:port] or mqtts://...) for HSL HFP; repeatable.", AllowMultipleArgumentsPerToken = false };
        var topic = new Option<string[]>("--topic") { Description = $"Topic filter for the --mqtt before it (before any --mqtt: for every broker); repeatable. Default {MqttSourceOptions.DefaultTopic}." };
        var gtfsRt = new Option<string[]>("--gtfs-rt") { Description = "Poll a GTFS-Realtime feed URL (TripUpdates and/or VehiclePositions, protobuf or JSON); repeatable." };
        var gtfsRtInterval = new Option<double>("--gtfs-rt-interval") { Description = "Seconds between two polls of each --gtfs-rt feed.", DefaultValueFactory = _ => GtfsRtSourceOptions.DefaultInterval.TotalSeconds };
        var model = new Option<string?>("--model") { Description = "Arrival model (fleet train) for predictions; default with the sample city: sample-data/model.bin." };
        var lateness = new Option<double>("--lateness") { Description = "Seconds of event time tracking holds each report to put late ones in order (0: tracked when it arrives, for the lowest latency; fleet replay uses 60).", DefaultValueFactory = _ => 0 };
        var lateTolerance = new Option<double>("--late-tolerance") { Description = "A report that comes after a newer one of its vehicle by at most this many seconds is tracked in its place; later ones are counted and dropped.", DefaultValueFactory = _ => 2 };
        var staleAfter = new Option<double>("--stale-after") { Description = "Seconds without a report (event time) after which a vehicle on a trip is alerted as stale and its predictions are withdrawn.", DefaultValueFactory = _ => 120 };
        var mqttListen = new Option<string?>("--mqtt-listen") { Description = "Run an MQTT broker inside Fleet on HOST:PORT (e.g. 127.0.0.1:1883): vehicles publish HFP straight to it." };
        var mqttUsers = new Option<FileInfo?>("--mqtt-users") { Description = "With --mqtt-listen: publishers must log in as a user of this file (written by fleet mqtt-user)." };
        var mqttCert = new Option<FileInfo?>("--mqtt-cert") { Description = "With --mqtt-listen: speak MQTT over TLS with this PKCS#12 (.pfx) certificate." };
        var mqttCertPassword = new Option<string?>("--mqtt-cert-password") { Description = "The password of --mqtt-cert, if it has one." };
        // Read (and replaced by its settings) before parsing, in CliRunner; declared here for the help and the parser.
        var config = new Option<FileInfo?>("--config") { Description = "Read serve's options from this JSON file (keys are the option names: {\"gtfs\": \"city.zip\", \"mqtt-listen\": \"127.0.0.1:1883\"}); the command line wins." };
        var retrainEvery = new Option<string>("--retrain-every") { Description = "With a model: retrain it in the background every this much event time (e.g. 1h, 30m, 900s; 0 disables); a new model is swapped in only when it scores better.", DefaultValueFactory = _ => "1h" };

        var cmd = new Command(
            "serve",
            """
            Runs the platform: ingests the sources, keeps the live state and serves the map, the SignalR hub
            (/hubs/live), the REST API (/api/...) and /metrics. With no input option it replays the sample city's
            recording (sample-data/recording.hfp.gz) in a loop, shifted to now.

            Example: fleet serve --replay sample-data/recording.hfp.gz --speed 10 --loop --urls http://127.0.0.1:5080
            Example: fleet serve --gtfs hsl.zip --mqtt mqtts://mqtt.hsl.fi:8883 --topic "/hfp/v2/journey/ongoing/vp/#"
            """)
        {
            urls, apiKey, tileUrl, otlp, otlpInterval, replay, speed, loop, replayStart, gtfs,
            store, keepJournal, clusterNode, seed,
            mqtt, topic, gtfsRt, gtfsRtInterval,
            model, retrainEvery, lateness, lateTolerance, staleAfter,
            mqttListen, mqttUsers, mqttCert, mqttCertPassword, config,
        };
        cmd.Validators.Add(r =>
        {
            if (r.GetValue(replay) is { } file && !File.Exists(file))
            {
                r.AddError($"--replay: '{file}' not found");
            }

            if (r.GetValue(gtfs) is { } feed && !File.Exists(feed) && !Directory.Exists(feed))
            {
                r.AddError($"--gtfs: '{feed}' not found");
            }

            if (r.GetValue(store) is { } spec && StoreSpec.TryParse(spec, out var storeError) is null)
            {
                r.AddError($"--store: {storeError}");
            }

            var node = r.GetValue(clusterNode);
            var seeds = r.GetValue(seed) ?? [];
            if (node is not null && ClusterEndpoint(node) is { } nodeError)
            {
                r.AddError($"--cluster: {nodeError}");
            }

            foreach (var s in seeds)
            {
                if (ClusterEndpoint(s) is { } seedError)
                {
                    r.AddError($"--seed: {seedError}");
                }
            }

            if (node is null && seeds.Length > 0)
            {
                r.AddError("--seed needs --cluster HOST:PORT (this node's own address)");
            }

            if (node is not null && (r.GetValue(store) is not { } clusterStore || StoreSpec.TryParse(clusterStore, out _) is not { Kind: StoreKind.Postgres }))
            {
                r.AddError("--cluster needs a store every node shares: --store postgres:CONNECTION-STRING (SQLite is one machine's file, so it cannot be a cluster's store)");
            }

            if (node is not null && r.GetValue(replay) is not null && (r.GetValue(loop) || r.GetValue(replayStart) != 0))
            {
                r.AddError("--cluster replays a recording once, from its start (one node at a time): --loop and --replay-start are for a single node");
            }

            if (node is not null && r.GetValue(replay) is not null && r.GetValue(gtfs) is null)
            {
                r.AddError("--cluster --replay needs --gtfs (the cluster tracks the recording against its schedule)");
            }

            if (r.GetValue(otlp) is { } push && !(Uri.TryCreate(push, UriKind.Absolute, out var pushUri) && pushUri.Scheme is "http" or "https"))
            {
                r.AddError($"--otlp: '{push}' is not an http(s) URL");
            }

            if (r.GetValue(retrainEvery) is { } every && ParseDuration(every) is null)
            {
                r.AddError($"--retrain-every: '{every}' is not a duration (a number with s, m or h, e.g. 1h or 90m; 0 disables)");
            }
        });
        cmd.SetAction((parse, ct) =>
        {
            var options = new ServeOptions
            {
                Urls = parse.GetValue(urls) ?? ServeOptions.DefaultUrls,
                ApiKey = parse.GetValue(apiKey),
                TileUrl = parse.GetValue(tileUrl),
                Otlp = parse.GetValue(otlp) is { } push ? new Uri(push) : null,
                Store = parse.GetValue(store) is { } storeSpec ? StoreSpec.TryParse(storeSpec, out _) : null,
                KeepJournal = parse.GetValue(keepJournal),
                ClusterNode = parse.GetValue(clusterNode),
                Seeds = parse.GetValue(seed) ?? [],
                ModelPath = parse.GetValue(model),
                RetrainEvery = ParseDuration(parse.GetValue(retrainEvery) ?? "1h") ?? TimeSpan.FromHours(1),
            };
            // Checked here, not in a validator: a validator sees 0 for an option left at its default.
            var hold = parse.GetValue(lateness);
            var tolerance = parse.GetValue(lateTolerance);
            if (!(hold >= 0 && hold <= 3600) || !(tolerance >= 0 && tolerance <= 3600))
            {
                Console.Error.WriteLine("fleet serve: --lateness and --late-tolerance must be seconds from 0 to 3600");
                return Task.FromResult(2);
            }

            var pushEvery = parse.GetValue(otlpInterval);
            if (!(pushEvery >= 0.1 && pushEvery <= 3600))
            {
                Console.Error.WriteLine("fleet serve: --otlp-interval must be seconds from 0.1 to 3600");
                return Task.FromResult(2);
            }

            options = options with { OtlpInterval = TimeSpan.FromSeconds(pushEvery) };
            var stale = parse.GetValue(staleAfter);
            if (!(stale >= 1 && stale <= 86_400))
            {
                Console.Error.WriteLine("fleet serve: --stale-after must be seconds from 1 to 86400");
                return Task.FromResult(2);
            }

            options = options with
            {
                Tracking = new TrackingOptions
                {
                    Lateness = TimeSpan.FromSeconds(hold), LateTolerance = TimeSpan.FromSeconds(tolerance), StaleAfter = TimeSpan.FromSeconds(stale),
                },
            };
            var replaySpeed = parse.GetValue(speed);
            if (!double.IsFinite(replaySpeed) || replaySpeed <= 0 || replaySpeed > ReplayOptions.MaxSpeed)
            {
                Console.Error.WriteLine($"fleet serve: --speed must be > 0 and <= {ReplayOptions.MaxSpeed}");
                return Task.FromResult(2);
            }

            List<MqttSourceOptions> brokers;
            List<GtfsRtSourceOptions> feeds;
            MqttBrokerOptions? listen = null;
            try
            {
                brokers = ServeSources.Brokers(parse);
                if (options.ClusterNode is not null)
                {
                    // The nodes share each broker's messages: every message goes to one node of the group.
                    brokers = [.. brokers.Select(b => b with { ShareGroup = MqttSourceOptions.ClusterShareGroup })];
                }
                if (parse.GetValue(mqttListen) is { } endpoint)
                {
                    var (address, port) = MqttBrokerOptions.ParseEndpoint(endpoint);
                    listen = new MqttBrokerOptions
                    {
                        Address = address, Port = port,
                        UsersFile = parse.GetValue(mqttUsers)?.FullName, CertificateFile = parse.GetValue(mqttCert)?.FullName,
                        CertificatePassword = parse.GetValue(mqttCertPassword),
                    };
                    foreach (var (option, file) in new[] { ("--mqtt-users", listen.UsersFile), ("--mqtt-cert", listen.CertificateFile) })
                    {
                        if (file is not null && !File.Exists(file))
                        {
                            throw new ArgumentException($"{option} {file}: file not found");
                        }
                    }

                    if (listen.UsersFile is { } users)
                    {
                        MqttUsers.Load(users); // a malformed line is said now, not when the first publisher connects
                    }
                }
                else if (parse.GetValue(mqttUsers) is not null || parse.GetValue(mqttCert) is not null)
                {
                    throw new ArgumentException("--mqtt-users and --mqtt-cert need --mqtt-listen");
                }

                var seconds = parse.GetValue(gtfsRtInterval);
                feeds = [.. (parse.GetValue(gtfsRt) ?? []).Select(u => GtfsRtSourceOptions.Parse(u, TimeSpan.FromSeconds(double.IsFinite(seconds) ? seconds : 0)))];
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidDataException)
            {
                Console.Error.WriteLine($"fleet serve: {ex.Message}");
                return Task.FromResult(2);
            }

            var recording = parse.GetValue(replay);
            var looping = parse.GetValue(loop);
            var startAt = parse.GetValue(replayStart);
            if (!(startAt >= 0 && startAt < 1))
            {
                Console.Error.WriteLine("fleet serve: --replay-start must be >= 0 and < 1");
                return Task.FromResult(2);
            }

            var feed = parse.GetValue(gtfs);
            var live = brokers.Count > 0 || feeds.Count > 0 || listen is not null;
            if (!live && recording is null && feed is null && options.ClusterNode is null && FindSample() is { } sample)
            {
                // No input given: the sample city, looping, so it looks live forever.
                recording = sample;
                looping = true;
                feed = SampleGtfs(sample);
                options = options with { Store = options.Store ?? StoreSpec.Default, ModelPath = options.ModelPath ?? SampleModel(sample) };
            }

            if (feeds.Count > 0 && brokers.Count == 0 && listen is null && recording is null)
            {
                // GTFS-RT alone: no positions may come (a TripUpdates-only feed), so the trips are tracked from the
                // arrivals and departures the updates observed; a trip a VehiclePositions vehicle runs is tracked from
                // its positions instead.
                options.Tracking.TripUpdateStopEvents = true;
            }

            GtfsNetwork? network;
            try
            {
                network = feed is null ? null : GtfsNetwork.Load(feed);
            }
            catch (Fleet.Gtfs.GtfsFormatException ex)
            {
                Console.Error.WriteLine($"fleet serve: --gtfs '{feed}': {ex.Message}");
                return Task.FromResult(2);
            }

            return RunAsync(options, ct, services =>
            {
                if (network is not null)
                {
                    services.AddSingleton<ITransitNetwork>(network);
                }

                if (recording is not null && options.ClusterNode is not null)
                {
                    services.AddClusterReplay(new ReplayOptions { Path = recording, Speed = replaySpeed });
                }
                else if (recording is not null)
                {
                    services.AddReplay(new ReplayOptions { Path = recording, Speed = replaySpeed, Loop = looping, StartAt = startAt });
                }

                brokers.ForEach(b => services.AddMqttSource(b));
                if (options.ClusterNode is not null && network is not null)
                {
                    // Every node hosts partitions and shows the whole fleet, with or without a source of its own.
                    services.AddLivePipeline();
                }

                if (listen is not null)
                {
                    services.AddMqttBroker(listen);
                }

                feeds.ForEach(f => services.AddGtfsRtSource(f));
            });
        });
        return cmd;
    }

    /// <summary>What <c>dotnet run --project src/Dashboard</c> runs: the sample city replayed live on the default URL.</summary>
    public static Task<int> RunDefaultAsync(CancellationToken cancellationToken)
    {
        if (FindSample() is not { } sample)
        {
            Console.Error.WriteLine("fleet: the default run needs sample-data/recording.hfp.gz (see sample-data/README.md).");
            return Task.FromResult(1);
        }

        var network = SampleGtfs(sample) is { } feed ? GtfsNetwork.Load(feed) : null;
        return RunAsync(new ServeOptions { Store = StoreSpec.Default, ModelPath = SampleModel(sample) }, cancellationToken, s =>
        {
            if (network is not null)
            {
                s.AddSingleton<ITransitNetwork>(network);
            }

            s.AddReplay(new ReplayOptions { Path = sample, Loop = true });
        });
    }

    /// <summary>A duration written as a number and a unit (<c>s</c>, <c>m</c> or <c>h</c>), or <c>0</c>; null when malformed.</summary>
    internal static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim();
        if (text == "0")
        {
            return TimeSpan.Zero;
        }

        if (text.Length < 2)
        {
            return null;
        }

        var unit = text[^1] switch { 's' => 1.0, 'm' => 60.0, 'h' => 3600.0, _ => double.NaN };
        if (double.IsNaN(unit) ||
            !double.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) ||
            !double.IsFinite(value) || value < 0 || value * unit > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return null;
        }

        return TimeSpan.FromSeconds(value * unit);
    }

    /// <summary>The sample city's arrival model beside its recording (a missing file is reported when serve loads it).</summary>
    private static string SampleModel(string recording) => Path.Combine(Path.GetDirectoryName(recording)!, "model.bin");

    private static string? SampleGtfs(string recording) =>
        Path.Combine(Path.GetDirectoryName(recording)!, "gtfs.zip") is var zip && File.Exists(zip) ? zip : null;

    // The first of the URLs whose fixed loopback or any-address port cannot be bound now, or null.
    private static string? PortInUse(string urls)
    {
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) || uri.Port <= 0)
            {
                continue;
            }

            var address = uri.Host is "localhost" ? System.Net.IPAddress.Loopback
                : System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) ? ip : null;
            if (address is null)
            {
                continue;
            }

            var probe = new System.Net.Sockets.TcpListener(address, uri.Port);
            try
            {
                probe.Start();
            }
            catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
            {
                return url;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Not ours to judge (an address this machine does not have): Kestrel says what is wrong.
            }
            finally
            {
                probe.Stop();
            }
        }

        return null;
    }

    /// <summary>The sample city's recording: under ./sample-data, else in a sample-data folder above the app.</summary>
    public static string? FindSample()
    {
        const string Name = "recording.hfp.gz";
        var here = Path.Combine(Environment.CurrentDirectory, "sample-data", Name);
        if (File.Exists(here))
        {
            return here;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "sample-data", Name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Runs the host until <paramref name="cancellationToken"/> (Ctrl+C) fires.</summary>
    public static async Task<int> RunAsync(ServeOptions options, CancellationToken cancellationToken, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        // Before anything starts (the replay and the store start with the host, ahead of Kestrel's bind): a port that
        // is taken is said at once, and nothing is left half-started behind the message.
        if (PortInUse(options.Urls) is { } taken)
        {
            await Console.Error.WriteLineAsync($"fleet serve: cannot listen on {taken}: the address is already in use (another fleet serve? choose one with --urls)").ConfigureAwait(false);
            return CliRunner.Failure;
        }

        FleetAkkaOptions? tracking = null;
        if (options.Store is { } store)
        {
            try
            {
                await store.CheckAsync(cancellationToken).ConfigureAwait(false);
                tracking = store.ToAkkaOptions() with { KeepJournal = options.KeepJournal };
                if (options.ClusterNode is { } node)
                {
                    var (host, port) = SplitEndpoint(node);
                    tracking = tracking with { Clustered = true, Host = host, Port = port, Seeds = options.Seeds };
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Data.Common.DbException or ArgumentException or TimeoutException)
            {
                await Console.Error.WriteLineAsync($"fleet serve: --store {store}: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            await Console.Out.WriteLineAsync($"fleet serve: vehicle state persisted in {store}").ConfigureAwait(false);
        }

        // The tracking node starts and stops with the host (Akka.Hosting).
        return await RunHostAsync(options, services =>
        {
            if (tracking is not null)
            {
                services.AddFleetTracking(tracking);
            }

            configureServices?.Invoke(services);
        }, cancellationToken).ConfigureAwait(false);
    }

    // HOST:PORT of a cluster node: null when valid, else what is wrong.
    private static string? ClusterEndpoint(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return $"'{endpoint}' is not HOST:PORT (e.g. 127.0.0.1:4053)";
        }

        return Uri.CheckHostName(endpoint[..colon]) == UriHostNameType.Unknown ? $"'{endpoint[..colon]}' is not a host name or address" : null;
    }

    private static (string Host, int Port) SplitEndpoint(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        return (endpoint[..colon], int.Parse(endpoint.AsSpan(colon + 1), CultureInfo.InvariantCulture));
    }

    private static async Task<int> RunHostAsync(ServeOptions options, Action<IServiceCollection> configureServices, CancellationToken cancellationToken)
    {
        await using var app = FleetWebHost.Build(options, configureServices);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await Console.Error.WriteLineAsync($"fleet serve: cannot listen on {options.Urls}: {ex.Message}").ConfigureAwait(false);
            return CliRunner.Failure;
        }

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        await Console.Out.WriteLineAsync($"fleet serve: listening on {string.Join(", ", addresses)} (Ctrl+C to stop)").ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }
}
