using Fleet.Dashboard.Sources;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Dashboard.Hosting;

/// <summary>The replay controls: <c>GET /api/replay</c> and <c>POST /api/replay</c> (404 when not replaying).</summary>
public static class ReplayApi
{
    /// <summary>A change to a running replay; absent fields stay as they are.</summary>
    /// <param name="Playing">Pause (false) or resume (true).</param>
    /// <param name="Speed">New speed, 0 &lt; speed ≤ 1000.</param>
    /// <param name="Position">Jump to this fraction (0 to 1) of the recording.</param>
    public sealed record ReplayChange(bool? Playing, double? Speed, double? Position);

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/api/replay", (IServiceProvider sp) => sp.GetService<IReplayControl>() is { } replay
            ? Results.Ok(replay.State)
            : Problems.NotFound("not replaying (start fleet serve with --replay)"));

        app.MapPost("/api/replay", (IServiceProvider sp, ReplayChange change) =>
        {
            if (sp.GetService<IReplayControl>() is not { } replay)
            {
                return Problems.NotFound("not replaying (start fleet serve with --replay)");
            }

            if (change.Speed is { } speed && (!double.IsFinite(speed) || speed <= 0 || speed > ReplayOptions.MaxSpeed))
            {
                return Problems.BadRequest($"speed must be > 0 and <= {ReplayOptions.MaxSpeed}");
            }

            if (change.Position is { } position && (!double.IsFinite(position) || position < 0 || position > 1))
            {
                return Problems.BadRequest("position must be between 0 and 1");
            }

            if (change.Speed is { } s)
            {
                replay.SetSpeed(s);
            }

            if (change.Position is { } p)
            {
                replay.Seek(p);
            }

            if (change.Playing is { } playing)
            {
                replay.SetPlaying(playing);
            }

            return Results.Ok(replay.State);
        });
    }
}
