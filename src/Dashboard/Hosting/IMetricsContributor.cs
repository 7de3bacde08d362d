using System.Text;

namespace Fleet.Dashboard.Hosting;

/// <summary>
/// Adds lines to <c>/metrics</c> (Prometheus text format): a source or stage registers one as a singleton and
/// <c>/metrics</c> appends what it writes after the live pipeline's figures.
/// </summary>
/// <remarks>Called on request threads, possibly concurrently: implementations read counters only.</remarks>
public interface IMetricsContributor
{
    /// <summary>Appends complete metric families (<c># HELP</c>, <c># TYPE</c>, samples), each line ending in <c>\n</c>.</summary>
    public void WriteMetrics(StringBuilder output);
}
