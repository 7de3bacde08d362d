using Fleet.Dashboard.Hosting;
using Fleet.Dashboard.Live;
using Fleet.Tracking;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fleet.Dashboard.Sources;

/// <summary>Registers the live inputs of <c>fleet serve</c> (MQTT brokers, GTFS-RT feeds) and their shared pipeline.</summary>
public static class LiveSourceServices
{
    /// <summary>Adds an MQTT source (one per broker); the shared <see cref="LivePipeline"/> comes with the first source.</summary>
    public static IServiceCollection AddMqttSource(this IServiceCollection services, MqttSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddLivePipeline();
        services.AddSingleton<IHostedService>(sp => new MqttSource(
            options, sp.GetRequiredService<LivePipeline>(), sp.GetRequiredService<SourceRegistry>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<Fleet.Actors.Hosting.TrackingCluster>()));
        return services;
    }

    /// <summary>Adds the embedded MQTT broker (<c>--mqtt-listen</c>): what publishers send it goes into the shared pipeline.</summary>
    public static IServiceCollection AddMqttBroker(this IServiceCollection services, MqttBrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddLivePipeline();
        services.AddSingleton(sp => new MqttBrokerSource(
            options, sp.GetRequiredService<LivePipeline>(), sp.GetRequiredService<SourceRegistry>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<Fleet.Actors.Hosting.TrackingCluster>()));
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<MqttBrokerSource>());
        return services;
    }

    /// <summary>Adds a recording replayed once cluster-wide (<c>fleet serve --cluster --replay</c>, see <see cref="ClusterReplaySource"/>).</summary>
    public static IServiceCollection AddClusterReplay(this IServiceCollection services, ReplayOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddLivePipeline();
        services.AddSingleton<IHostedService>(sp => new ClusterReplaySource(
            options, sp.GetRequiredService<LivePipeline>(), sp.GetRequiredService<SourceRegistry>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<ClusterReplaySource>(), sp.GetRequiredService<Fleet.Actors.Hosting.TrackingCluster>()));
        return services;
    }

    /// <summary>Adds a GTFS-RT source (one per feed URL).</summary>
    public static IServiceCollection AddGtfsRtSource(this IServiceCollection services, GtfsRtSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddLivePipeline();
        services.AddSingleton<IHostedService>(sp => new GtfsRtSource(
            options, sp.GetRequiredService<LivePipeline>(), sp.GetRequiredService<SourceRegistry>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<Fleet.Actors.Hosting.TrackingCluster>()));
        return services;
    }

    /// <summary>Adds the pipeline the live sources share (once), and the hosted service that runs it.</summary>
    public static IServiceCollection AddLivePipeline(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(LivePipeline)))
        {
            return services;
        }

        // Live sources are tracked in event time (see LivePipeline), so a recording published to a broker is tracked too.
        services.TryAddSingleton(sp => new LivePipeline(
            sp.GetRequiredService<LiveEvents>(), sp.GetService<ITransitNetwork>(), sp.GetRequiredService<TimeProvider>(),
            predictor: sp.GetService<ArrivalPredictors>()?.Create(), followEventTime: true,
            logger: sp.GetRequiredService<ILoggerFactory>().CreateLogger<LivePipeline>(), options: sp.GetService<TrackingOptions>(),
            cluster: sp.GetService<Fleet.Actors.Hosting.TrackingCluster>()));
        services.AddSingleton<IMetricsContributor>(sp => sp.GetRequiredService<LivePipeline>());
        services.AddSingleton<IHostedService, LivePipelineRunner>();
        return services;
    }

    private sealed class LivePipelineRunner(LivePipeline pipeline) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => pipeline.RunAsync(stoppingToken);
    }
}
