using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Actors.Hosting;

namespace Fleet.Dashboard.Sources;

/// <summary>Runs a source's Akka.Streams graph on the node's actor system for a hosted service's lifetime.</summary>
internal static class StreamedSource
{
    /// <summary>
    /// Waits for the pipeline, then runs <paramref name="source"/> into the sink <paramref name="sink"/> makes until
    /// <paramref name="stopping"/> is cancelled (the source is then shut down: what it emitted still goes in) or the
    /// graph ends by itself.
    /// </summary>
    /// <param name="cluster">The node whose actor system runs the graph.</param>
    /// <param name="pipeline">The pipeline the sink belongs to (started before the graph runs).</param>
    /// <param name="source">The source's graph.</param>
    /// <param name="sink">Makes the sink, once the pipeline runs.</param>
    /// <param name="stopping">The host's shutdown.</param>
    /// <param name="drain">When set, what <paramref name="stopping"/> does instead of shutting the source down: a
    /// source that ends by itself once told to (an inbox completed) drains what it holds into the pipeline.</param>
    public static async Task RunAsync<T>(TrackingCluster cluster, LivePipeline pipeline, Source<T, NotUsed> source, Func<Sink<T, NotUsed>> sink, CancellationToken stopping,
        Action? drain = null)
    {
        await pipeline.Started.WaitAsync(stopping).ConfigureAwait(false);
        var system = await cluster.GetSystemAsync().WaitAsync(stopping).ConfigureAwait(false);
        using var materializer = system.Materializer();
        var (kill, done) = source
            .ViaMaterialized(KillSwitches.Single<T>(), Keep.Right)
            .WatchTermination((k, d) => (k, d))
            .To(sink())
            .Run(materializer);
        await using (stopping.Register(drain ?? kill.Shutdown).ConfigureAwait(false))
        {
            try
            {
                await done.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AbruptStageTerminationException or AbruptTerminationException)
            {
                // The node's actor system stopped (only the host's shutdown stops it) before this graph was told to:
                // the source stops with it.
                return;
            }
        }

        // Tracking's hub cancels every graph running into it when tracking's stream fails: said, not a quiet stop.
        if (!stopping.IsCancellationRequested && pipeline.Stream?.Completion is { IsFaulted: true } failed)
        {
            throw new InvalidOperationException("tracking's stream failed; the source stopped with it", failed.Exception?.GetBaseException());
        }
    }
}
