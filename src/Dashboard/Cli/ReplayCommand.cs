using System.CommandLine;
using System.Diagnostics;
using System.Threading.Channels;
using Fleet.Ingest.Recording;
using Fleet.Ingest.Replay;
using Fleet.Mqtt;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// <c>fleet replay FILE... [--speed 1|10|max] [--loop] [--to mqtt://host:port]</c>: replays recordings into the
/// pipeline, or publishes them to a broker.
/// </summary>
internal static class ReplayCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var files = new Argument<FileInfo[]>("FILE") { Description = "Recordings to merge by receive time (.txt or .gz), or one GTFS-Realtime TripUpdates archive (folder, .zip, .tar.gz)", Arity = ArgumentArity.OneOrMore };
        var speed = new Option<string>("--speed") { Description = "Replay speed: 1 (live), 10, any factor, or max", DefaultValueFactory = _ => "1" };
        var loop = new Option<bool>("--loop") { Description = "Start again after the end, until Ctrl+C" };
        var every = new Option<double>("--report-every") { Description = "Seconds between status lines when stdout is not a terminal", DefaultValueFactory = _ => 5 };
        var gtfs = new Option<FileInfo?>("--gtfs") { Description = "GTFS static zip to track against (vehicles, trips, stops, alerts)" };
        var outEvents = new Option<FileInfo?>("--out-events") { Description = "Write every derived event (arrival, departure, alert, prediction) as a JSON line" };
        var predictions = new Option<bool>("--predictions") { Description = "With tracking: add predictions for downstream stops (the delay carried forward, or the model given with --model)" };
        var model = new Option<FileInfo?>("--model") { Description = "With --gtfs: predict with this arrival model (fleet train), p10-p90 ranges included; implies --predictions" };
        var to = new Option<string?>("--to") { Description = "Publish to this broker instead (mqtt://host:port or mqtts://host:port), topics preserved" };
        var qos = new Option<int>("--qos") { Description = "With --to: publish QoS, 0 or 1", DefaultValueFactory = _ => 1 };
        var user = new Option<string?>("--username") { Description = "With --to: user name for the broker" };
        var password = new Option<string?>("--password") { Description = "With --to: password for the broker" };
        var caFile = new Option<FileInfo?>("--ca-file") { Description = "With --to mqtts://: trust only the CA certificates in this PEM file" };
        var cmd = new Command("replay", """
            Replays recordings in receive-time order, scaled by --speed, into the in-process pipeline
            (parse, count, log what it sees). A progress bar on a terminal, status lines otherwise.
            With --gtfs and/or --out-events the messages go through tracking and the derived events are written
            as JSON lines, byte-identical on every run of the same input. With --to they are published to an
            MQTT broker instead (topics preserved, QoS 1 by default).

            Example: fleet replay sample-data/recording.hfp.gz --speed 10 --loop
            Example: fleet replay sample-data/recording.hfp.gz --gtfs sample-data/gtfs.zip --speed max --out-events events.jsonl
            Example: fleet replay sample-data/recording.hfp.gz --gtfs sample-data/gtfs.zip --speed max --model sample-data/model.bin --out-events events.jsonl
            Example: fleet replay hfp.txt.gz --speed max --to mqtt://127.0.0.1:1883

            A GTFS-Realtime TripUpdates archive (a folder, .zip or .tar.gz of snapshots) is tracked from its observed
            stop events alone, once and at full speed: arrivals, departures and (with --model or --predictions) the
            predictions at every poll.

            Example: fleet replay tripupdates.tar.gz --gtfs static.zip --model model.bin --out-events events.jsonl
            """)
        {
            files,
            speed,
            loop,
            every,
            gtfs,
            outEvents,
            predictions,
            model,
            to,
            qos,
            user,
            password,
            caFile,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            if (!ReplayOptions.TryParseSpeed(parse.GetValue(speed), out var factor))
            {
                Console.Error.WriteLine($"fleet replay: --speed must be a positive number or 'max', not '{parse.GetValue(speed)}'");
                return 2;
            }

            var paths = parse.GetValue(files)!.Select(f => f.FullName).ToArray();
            if (paths.Length == 1 && ArchiveReplay.IsArchive(paths[0]))
            {
                if (parse.GetValue(loop) || parse.GetValue(to) is not null)
                {
                    Console.Error.WriteLine("fleet replay: a GTFS-Realtime archive replays once, at full speed, into tracking; --loop and --to do not apply");
                    return 2;
                }

                if (parse.GetValue(gtfs) is { Exists: false } missingGtfs)
                {
                    Console.Error.WriteLine($"fleet replay: --gtfs file not found: {missingGtfs.FullName}");
                    return 2;
                }

                return ArchiveReplay.Run(paths[0], parse.GetValue(gtfs)?.FullName, parse.GetValue(outEvents)?.FullName, parse.GetValue(predictions), parse.GetValue(model)?.FullName, ct);
            }

            using var logging = CliLogging.CreateFactory(LogLevel.Warning);
            var gtfsPath = parse.GetValue(gtfs)?.FullName;
            var eventsPath = parse.GetValue(outEvents)?.FullName;
            if (gtfsPath is not null && !File.Exists(gtfsPath))
            {
                Console.Error.WriteLine($"fleet replay: --gtfs file not found: {gtfsPath}");
                return 2;
            }

            var modelPath = parse.GetValue(model)?.FullName;
            if (modelPath is not null && gtfsPath is null)
            {
                Console.Error.WriteLine("fleet replay: --model needs --gtfs (the schedule the model predicts against)");
                return 2;
            }

            TrackingReplayTarget? tracking;
            try
            {
                tracking = gtfsPath is not null || eventsPath is not null
                    ? new TrackingReplayTarget(gtfsPath, eventsPath, parse.GetValue(predictions), modelPath)
                    : null;
            }
            catch (Exception ex) when (modelPath is not null && ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"fleet replay: --model: {ex.Message}");
                return 2;
            }

            using var disposeTracking = tracking;
            IReplayTarget target = tracking is not null ? tracking : new PipelineReplayTarget(logging);
            var settings = new ReplaySettings(paths, new ReplayOptions { Speed = factor, Loop = parse.GetValue(loop) },
                TimeSpan.FromSeconds(Math.Max(0.1, parse.GetValue(every))));
            if (parse.GetValue(to) is not { } url)
            {
                return await RunAsync(settings, target, logging, ct).ConfigureAwait(false);
            }

            if (tracking is not null)
            {
                Console.Error.WriteLine("fleet replay: --to publishes to a broker; it cannot be combined with --gtfs or --out-events");
                return 2;
            }

            MqttReplayTarget mqtt;
            try
            {
                var q = parse.GetValue(qos);
                if (q is not (0 or 1))
                {
                    throw new ArgumentException("--qos must be 0 or 1");
                }

                var options = new MqttClientOptions
                {
                    Server = MqttClientOptions.ParseServer(url),
                    UserName = parse.GetValue(user),
                    Password = parse.GetValue(password),
                    CaCertificateFile = parse.GetValue(caFile)?.FullName,
                    MaxInflight = 1000,
                };
                mqtt = new MqttReplayTarget(options, (MqttQos)q, logging);
            }
            catch (ArgumentException ex)
            {
                Console.Error.WriteLine($"fleet replay: {ex.Message}");
                return 2;
            }

            await using (mqtt.ConfigureAwait(false))
            {
                try
                {
                    await mqtt.ConnectAsync(ct).ConfigureAwait(false);
                    return await RunAsync(settings, mqtt, logging, ct).ConfigureAwait(false);
                }
                catch (MqttException ex)
                {
                    Console.Error.WriteLine($"fleet replay: {ex.Message}");
                    return 1;
                }
            }
        });
        return cmd;
    }

    /// <summary>What to replay and how to report.</summary>
    internal sealed record ReplaySettings(IReadOnlyList<string> Files, ReplayOptions Options, TimeSpan ReportEvery)
    {
        /// <summary>Show a Spectre progress bar (stdout is a terminal) rather than status lines.</summary>
        public bool ProgressBar { get; init; } = !Console.IsOutputRedirected;

        /// <summary>Where status lines go when there is no progress bar (stdout by default).</summary>
        public Action<string>? StatusLine { get; init; }
    }

    /// <summary>Replays <paramref name="settings"/> into <paramref name="target"/>; returns the exit code.</summary>
    public static async Task<int> RunAsync(ReplaySettings settings, IReplayTarget target, ILoggerFactory logging, CancellationToken ct)
    {
        var missing = settings.Files.Where(f => !File.Exists(f)).ToList();
        if (missing.Count > 0)
        {
            Console.Error.WriteLine($"fleet replay: file not found: {string.Join(", ", missing)}");
            return 2;
        }

        var channel = Channel.CreateBounded<RecordedMessage>(new BoundedChannelOptions(4096)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var replayer = new Replayer([.. settings.Files.Select(ReplaySource.FromFile)], settings.Options, TimeProvider.System, logging.CreateLogger<Replayer>());
        var clock = Stopwatch.StartNew();

        // A failing target (a broker that refuses us for good) stops the replayer, which would otherwise wait
        // forever on the full channel.
        using var stopProducer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var produce = Task.Run(async () =>
        {
            try
            {
                await replayer.RunAsync(channel.Writer, stopProducer.Token).ConfigureAwait(false);
            }
            finally
            {
                channel.Writer.TryComplete();
            }
        }, ct);
        var consume = Task.Run(async () =>
        {
            try
            {
                await target.ConsumeAsync(channel.Reader, ct).ConfigureAwait(false);
            }
            catch
            {
                await stopProducer.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }, ct);
        var all = Task.WhenAll(produce, consume);

        var write = settings.StatusLine ?? Console.WriteLine;
        string Line() => $"replay {Percent(replayer)} sent {replayer.MessagesSent:N0}{LoopText(replayer)} -> {target.Name}: {target.Status(clock.Elapsed)}";

        if (settings.ProgressBar)
        {
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask("replay", maxValue: 100);
                    while (!all.IsCompleted)
                    {
                        await Task.WhenAny(all, Task.Delay(500, CancellationToken.None)).ConfigureAwait(false);
                        bar.Value = (replayer.Progress ?? 0) * 100;
                        bar.Description = Markup.Escape($"sent {replayer.MessagesSent:N0}{LoopText(replayer)} | {target.Status(clock.Elapsed)}");
                    }

                    bar.Value = 100;
                }).ConfigureAwait(false);
        }
        else
        {
            while (!all.IsCompleted)
            {
                await Task.WhenAny(all, Task.Delay(settings.ReportEvery, CancellationToken.None)).ConfigureAwait(false);
                if (!all.IsCompleted)
                {
                    write(Line());
                }
            }
        }

        try
        {
            await all.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl+C is how a looping replay ends; report and exit normally.
        }

        if (ct.IsCancellationRequested)
        {
            // Stopped (Ctrl+C, SIGTERM) before the end: say how far it got, not "done".
            write($"stopped: replay {(replayer.Progress is { } p ? $"{p * 100:0.0}%" : "-")} sent {replayer.MessagesSent:N0}{LoopText(replayer)} -> {target.Name}: {target.Status(clock.Elapsed)}");
            return 0;
        }

        write($"done: {Line()}");
        return 0;
    }

    private static string Percent(Replayer r) => r.State == ReplayState.Done ? "100%" : r.Progress is { } p ? $"{p * 100:0.0}%" : "-";

    private static string LoopText(Replayer r) => r.Loop > 0 ? $" (loop {r.Loop + 1})" : "";
}
