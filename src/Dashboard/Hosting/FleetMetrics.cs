using System.Diagnostics.Metrics;
using Fleet.Dashboard.Live;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// The platform's figures as <see cref="System.Diagnostics.Metrics"/> instruments on the <c>Fleet</c> meter, exported
/// by OpenTelemetry: scraped at <c>/metrics</c> (Prometheus text) and, with <c>--otlp URL</c>, pushed to a collector.
/// ASP.NET Core's, Kestrel's, SignalR's and the runtime's own meters are exported beside them.
/// </summary>
/// <remarks>
/// Every Fleet instrument is observable: its callback reads the counters the live state, the sources and the stages
/// keep anyway, at the moment of a scrape or export, so nothing on the hot path pays for metrics. Instrument names
/// are the <c>fleet_*</c> series' names (README, "Metrics"); counters already end in <c>_total</c>.
/// </remarks>
public sealed class FleetMetrics
{
    /// <summary>Name of the meter that holds Fleet's own instruments.</summary>
    public const string MeterName = "Fleet";

    /// <summary>The platform's meters besides Fleet's: ASP.NET Core, Kestrel, SignalR connections and the runtime.</summary>
    public static readonly string[] PlatformMeters =
    [
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Http.Connections",
        "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Diagnostics",
        "System.Runtime",
    ];

    /// <summary>Creates the live state's and the sources' instruments, then every contributor's.</summary>
    public FleetMetrics(IMeterFactory meters, LiveEvents live, SourceRegistry sources, TimeProvider time, IEnumerable<IMetricsContributor> contributors)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(contributors);
        Meter = meters.Create(MeterName);
        var m = live.Metrics;
        var meter = Meter;
        meter.Counter("fleet_events_total", "Events received from all sources.", () => m.Events);
        meter.Gauge("fleet_events_per_second", "Events per second over the last 5 s.", () => m.EventsPerSecond);
        meter.Gauge("fleet_lag_seconds", "Wall clock minus the event time of the newest event.", () => m.LagSeconds);
        meter.Gauge("fleet_vehicles", "Vehicles currently tracked.", () => live.VehicleCount);
        meter.Gauge("fleet_predictions", "Predictions currently kept.", () => live.PredictionCount);
        meter.Counter("fleet_predictions_total", "Predictions published.", () => m.Predictions);
        meter.Counter("fleet_predictions_unchanged_total", "Predictions that said the same as the one held, not pushed.", () => m.UnchangedPredictions);
        meter.Gauge("fleet_predictions_per_second", "Predictions per second over the last 5 s.", () => m.PredictionsPerSecond);
        meter.Gauge("fleet_hub_clients", "Connected hub clients.", () => live.ClientCount);
        meter.Counter("fleet_hub_batches_total", "Batches pushed to hub clients.", () => m.Batches);
        meter.Counter("fleet_hub_items_total", "Items pushed to hub clients.", () => m.ItemsPushed);
        meter.Counter("fleet_hub_missed_batches_total", "Batches slow clients missed (coalesced into the next).", () => m.MissedBatches);
        meter.Counter("fleet_hub_send_failures_total", "Pushes that failed.", () => m.SendFailures);
        meter.Gauge("fleet_hub_client_pending_items", "Updates waiting to be pushed, all clients.", () => live.ClientsSummary().PendingItems);
        meter.Gauge("fleet_hub_client_pending_items_max", "Updates waiting for the client with the most.", () => live.ClientsSummary().MaxPendingItems);
        meter.Gauge("fleet_hub_sends_in_flight", "Pushes being written to clients (at most 2 per client).", () => live.ClientsSummary().SendsInFlight);
        meter.Gauge("fleet_hub_clients_stalled", "Clients with a push in flight for 1 s or more.", () => live.ClientsSummary().Stalled);
        meter.Counter("fleet_hub_slow_clients_disconnected_total", "Clients disconnected because a push was stuck too long.", () => m.SlowClientsDisconnected);
        meter.Counter("fleet_vehicles_expired_total", "Vehicles removed after going quiet.", () => m.Expired);
        meter.CreateObservableCounter("fleet_rejected_total", () => Enum.GetValues<RejectReason>()
            .Select(r => new Measurement<long>(m.Rejected(r), new KeyValuePair<string, object?>("reason", r.ToString()))), description: "Updates refused by a bound, by reason.");

        static KeyValuePair<string, object?>[] Tags(SourceStatus s, string? reason = null) => reason is null
            ? [new("source", s.Name), new("kind", s.Kind)]
            : [new("source", s.Name), new("kind", s.Kind), new("reason", reason)];
        meter.CreateObservableCounter("fleet_source_events_total", () => sources.All.Select(s => new Measurement<long>(s.Events, Tags(s))),
            description: "Events per source.");
        meter.CreateObservableGauge("fleet_source_connected", () => sources.All.Select(s => new Measurement<int>(s.Connected ? 1 : 0, Tags(s))),
            description: "1 when the source is connected.");
        meter.CreateObservableGauge("fleet_source_lag_seconds", () =>
        {
            var now = time.GetUtcNow().UtcDateTime;
            return sources.All.Select(s => (s, lag: s.LagSeconds(now))).Where(x => x.lag is not null)
                .Select(x => new Measurement<double>(x.lag!.Value, Tags(x.s)));
        }, description: "Wall clock minus the newest event time, per source.");
        meter.CreateObservableCounter("fleet_source_failures_total", () => sources.All.Select(s => new Measurement<long>(s.Failures, Tags(s))),
            description: "Failed connections or polls, per source.");
        meter.CreateObservableCounter("fleet_source_rejected_total", () => sources.All.SelectMany(s => s.Rejected
            .Select(r => new Measurement<long>(r.Value, Tags(s, r.Key)))), description: "Input messages rejected, per source and reason.");

        foreach (var contributor in contributors)
        {
            contributor.CreateInstruments(meter);
        }
    }

    /// <summary>The <c>Fleet</c> meter.</summary>
    public Meter Meter { get; }

    /// <summary>
    /// Adds OpenTelemetry's metrics: the Fleet meter and the platform's (<see cref="PlatformMeters"/>), the Prometheus
    /// scrape endpoint, and an OTLP exporter when <paramref name="otlp"/> is set (HTTP/protobuf; a URL without a path
    /// gets the collector's <c>/v1/metrics</c>), pushing every <paramref name="otlpInterval"/>.
    /// </summary>
    public static void AddServices(IServiceCollection services, Uri? otlp, TimeSpan otlpInterval)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<FleetMetrics>();
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("fleet"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(MeterName).AddMeter(PlatformMeters);
                // Meters are found by name process-wide; with several hosts in one process (the tests run many), each
                // host's meters come from its own meter factory: export only this host's (and the runtime's, which has none).
                if (metrics is IDeferredMeterProviderBuilder deferred)
                {
                    deferred.Configure((sp, builder) =>
                    {
                        var own = sp.GetRequiredService<IMeterFactory>();
                        builder.AddView(i => i.Meter.Scope is IMeterFactory other && !ReferenceEquals(other, own) ? MetricStreamConfiguration.Drop : null);
                    });
                }

                // Every scrape reads the counters now (the exporter's default caches a scrape for 300 ms).
                metrics.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
                if (otlp is not null)
                {
                    metrics.AddOtlpExporter((exporter, reader) =>
                    {
                        exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                        exporter.Endpoint = otlp.AbsolutePath is "/" or "" ? new Uri(otlp, "/v1/metrics") : otlp;
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)Math.Max(100, otlpInterval.TotalMilliseconds);
                    });
                }
            });
    }

    /// <summary>Creates the instruments (so they exist before the first scrape) and maps <c>/metrics</c>.</summary>
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Services.GetRequiredService<FleetMetrics>();
        app.MapPrometheusScrapingEndpoint("/metrics");
    }
}

/// <summary>Shorthands for the observable instruments of <see cref="FleetMetrics"/> and its contributors.</summary>
public static class MeterExtensions
{
    /// <summary>An observable counter of one value.</summary>
    public static void Counter(this Meter meter, string name, string description, Func<long> value)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.CreateObservableCounter(name, value, description: description);
    }

    /// <summary>An observable gauge of one value.</summary>
    public static void Gauge(this Meter meter, string name, string description, Func<double> value)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.CreateObservableGauge(name, value, description: description);
    }

    /// <summary>An observable gauge with a value only while <paramref name="value"/> returns one.</summary>
    public static void OptionalGauge(this Meter meter, string name, string description, Func<double?> value)
    {
        ArgumentNullException.ThrowIfNull(meter);
        meter.CreateObservableGauge(name, () => value() is { } v ? [new Measurement<double>(v)] : Array.Empty<Measurement<double>>(), description: description);
    }
}
