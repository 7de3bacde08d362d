using System.Text;

namespace Fleet.Simulation.Dynamics;

/// <summary>The HFP v2 event types the generator emits.</summary>
public enum HfpEvent
{
    /// <summary>Vehicle position, every second.</summary>
    Vp,
    /// <summary>Will soon arrive at a stop.</summary>
    Due,
    /// <summary>Enters a stop's radius.</summary>
    Arr,
    /// <summary>Has stopped at the stop.</summary>
    Ars,
    /// <summary>Doors opened.</summary>
    Doo,
    /// <summary>Doors closed.</summary>
    Doc,
    /// <summary>Ready to depart (starts moving).</summary>
    Pde,
    /// <summary>Leaves the stop's radius.</summary>
    Dep,
    /// <summary>Passes a stop without stopping.</summary>
    Pas,
}

/// <summary>Pre-encoded topic and payload names of <see cref="HfpEvent"/>.</summary>
internal static class HfpEventNames
{
    public static readonly byte[][] Lower = Names(false);
    public static readonly byte[][] Upper = Names(true);

    private static byte[][] Names(bool upper) =>
        Enum.GetValues<HfpEvent>().Select(e => Encoding.ASCII.GetBytes(upper ? e.ToString().ToUpperInvariant() : e.ToString().ToLowerInvariant())).ToArray();
}
