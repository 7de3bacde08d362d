using Fleet.Tracking;

namespace Fleet.Dashboard.Hosting;

/// <summary>What <c>fleet serve</c> runs: its inputs, store and listening addresses.</summary>
public sealed record ServeOptions
{
    /// <summary>The default listening address (loopback only).</summary>
    public const string DefaultUrls = "http://127.0.0.1:5080";

    /// <summary>Addresses to listen on, separated by ';'.</summary>
    public string Urls { get; init; } = DefaultUrls;

    /// <summary>When set, the API, the hub and /metrics require this key.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The folder with the built page (index.html); null to find it beside the app or in src/Dashboard/wwwroot.</summary>
    public string? WebRoot { get; init; }

    /// <summary>
    /// Where vehicle state is persisted (<c>--store sqlite:PATH|postgres:CONNSTR</c>); null keeps tracking in memory.
    /// The run with no options uses <see cref="StoreSpec.Default"/>.
    /// </summary>
    public StoreSpec? Store { get; init; }

    /// <summary>With a store: keep every journaled batch (<c>--keep-journal</c>) instead of deleting what each
    /// partition's newest snapshot covers.</summary>
    public bool KeepJournal { get; init; }

    /// <summary>This node's HOST:PORT in the Akka.NET cluster (<c>--cluster</c>); null: a single node.</summary>
    public string? ClusterNode { get; init; }

    /// <summary>The seed nodes' HOST:PORT (<c>--seed</c>); empty with <see cref="ClusterNode"/>: this node is its own seed.</summary>
    public IReadOnlyList<string> Seeds { get; init; } = [];

    /// <summary>The arrival model file (<c>fleet train</c>); null predicts with the delay carried forward.</summary>
    public string? ModelPath { get; init; }

    /// <summary>
    /// With a model: retrain it in the background every this much event time on a sliding window of what the stream
    /// observed, swapping the new one in only when it scores better (<c>--retrain-every</c>, default 1 hour); zero disables.
    /// </summary>
    public TimeSpan RetrainEvery { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Tracking's thresholds for every source of this run (<c>--lateness</c>, <c>--late-tolerance</c>): by default
    /// <see cref="TrackingOptions.Live"/>, nothing held, so a report is tracked (and predicted from) when it arrives.
    /// </summary>
    public TrackingOptions Tracking { get; init; } = TrackingOptions.Live();

    /// <summary>The page's tile URL template (<c>--tile-url</c>, <c>https://.../{z}/{x}/{y}.png</c>); null: OpenStreetMap's;
    /// <c>none</c>: no tiles (the network drawn from GTFS only).</summary>
    public string? TileUrl { get; init; }

    /// <summary>Where to push metrics by OTLP (HTTP/protobuf, <c>--otlp URL</c>) besides serving <c>/metrics</c>; null: no push.</summary>
    public Uri? Otlp { get; init; }

    /// <summary>How often metrics are pushed to <see cref="Otlp"/> (<c>--otlp-interval</c>, default 15 s).</summary>
    public TimeSpan OtlpInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>OpenStreetMap's standard tiles, the page's base map unless <c>--tile-url</c> names another (or none).</summary>
    public const string OpenStreetMapTiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

    /// <summary>The attribution OpenStreetMap's tile usage policy asks for.</summary>
    public const string OpenStreetMapAttribution = "© OpenStreetMap contributors";

    /// <summary>The tile template the page uses: <see cref="TileUrl"/>, OpenStreetMap's when unset, null for <c>none</c>.</summary>
    public string? EffectiveTileUrl => TileUrl switch
    {
        null => OpenStreetMapTiles,
        var t when string.Equals(t, "none", StringComparison.OrdinalIgnoreCase) => null,
        var t => t,
    };
}
