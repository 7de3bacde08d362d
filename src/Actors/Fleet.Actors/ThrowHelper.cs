using System.Diagnostics.CodeAnalysis;

namespace Fleet.Actors;

/// <summary>Throws for the hot paths, keeping <c>throw</c> out of them.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void RegionStopped(string region) =>
        throw new InvalidOperationException($"region '{region}' is stopping or stopped and accepts no more messages");

    [DoesNotReturn]
    public static void SideEffectDuringRecovery(string entityId) =>
        throw new InvalidOperationException($"entity '{entityId}' tried to send during recovery; recovery must be free of side effects");
}
