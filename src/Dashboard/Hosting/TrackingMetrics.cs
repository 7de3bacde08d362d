using System.Diagnostics.Metrics;
using Fleet.Dashboard.Sources;
using Fleet.Tracking.Partitions;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Tracking's drop counters, from the Akka.NET partitions (a replay's and the live sources'), summed.
/// </summary>
internal sealed class TrackingMetrics(IServiceProvider services) : IMetricsContributor
{
    public void CreateInstruments(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        TrackingDrops Sum()
        {
            var drops = services.GetService<ReplaySource>()?.Persistent?.Drops ?? default;
            return drops + (services.GetService<LivePipeline>()?.Drops ?? default);
        }

        meter.Counter("fleet_tracking_late_events_total", "Events dropped by tracking: behind their vehicle's newest tracked event by more than the late tolerance.", () => Sum().Late);
        meter.Counter("fleet_tracking_corrected_events_total", "Events that came after a newer one of their vehicle, within the late tolerance, tracked in its place.", () => Sum().Corrected);
        meter.Counter("fleet_tracking_duplicate_events_total", "Events dropped by tracking as exact duplicates.", () => Sum().Duplicates);
        meter.Counter("fleet_tracking_unmatched_journeys_total", "Journeys the schedule did not know.", () => Sum().Unmatched);
    }
}
