using System.Diagnostics.Metrics;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// A source or stage with figures for <c>/metrics</c> and OTLP: it registers as a singleton and creates its
/// observable instruments on the <c>Fleet</c> meter when the host starts (<see cref="FleetMetrics"/>).
/// </summary>
/// <remarks>The instruments' callbacks run on the exporter's threads, possibly concurrently: they read counters only.</remarks>
public interface IMetricsContributor
{
    /// <summary>Creates this component's instruments on <paramref name="meter"/> (called once).</summary>
    public void CreateInstruments(Meter meter);
}
