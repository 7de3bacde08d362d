using Fleet.Simulation.City;

namespace Fleet.Simulation.Dynamics;

/// <summary>
/// The geometry one trip drives: its pattern's path, or a copy with a detour around one block.
/// </summary>
/// <remarks>Immutable; shared by every trip of a pattern that drives it unchanged.</remarks>
internal sealed class TripPath
{
    /// <summary>Lateral offset of the driving lane from the street centre line, metres to the right.</summary>
    private const double LaneOffset = 3.5;

    public TripPath(StreetNetwork network, int[] nodes, double[] stopDistance, int detourFromNode)
    {
        Nodes = nodes;
        Edges = new int[nodes.Length - 1];
        Distance = new double[nodes.Length];
        for (var k = 0; k < Edges.Length; k++)
        {
            Edges[k] = network.EdgeBetween(nodes[k], nodes[k + 1]);
            Distance[k + 1] = Distance[k] + network.EdgeLength[Edges[k]];
        }

        StopDistance = stopDistance;
        DetourFromNode = detourFromNode;
        Network = network;
    }

    public StreetNetwork Network { get; }

    public int[] Nodes { get; }

    public int[] Edges { get; }

    public double[] Distance { get; }

    public double[] StopDistance { get; }

    /// <summary>Index in <see cref="Nodes"/> where a detour starts, or -1.</summary>
    public int DetourFromNode { get; }

    public double Length => Distance[^1];

    /// <summary>Advances <paramref name="segment"/> so that it holds <paramref name="distance"/>.</summary>
    public int SegmentAt(double distance, int segment)
    {
        while (segment < Edges.Length - 1 && Distance[segment + 1] <= distance)
        {
            segment++;
        }

        return segment;
    }

    /// <summary>Position in metres (lane, not centre line) and compass heading at a distance along the path.</summary>
    public (double X, double Y, double Heading) PointAt(double distance, int segment)
    {
        var a = Nodes[segment];
        var b = Nodes[segment + 1];
        var ax = Network.NodeX[a];
        var ay = Network.NodeY[a];
        var dx = Network.NodeX[b] - ax;
        var dy = Network.NodeY[b] - ay;
        var len = Distance[segment + 1] - Distance[segment];
        var f = Math.Clamp((distance - Distance[segment]) / len, 0, 1);
        var ux = dx / len;
        var uy = dy / len;
        var heading = Math.Atan2(ux, uy) * 180 / Math.PI;
        if (heading < 0)
        {
            heading += 360;
        }

        return (ax + (f * dx) + (LaneOffset * uy), ay + (f * dy) - (LaneOffset * ux), heading);
    }

    /// <summary>The pattern's own path.</summary>
    public static TripPath ForPattern(StreetNetwork network, Pattern pattern) =>
        new(network, pattern.Nodes, pattern.StopDistance, -1);

    /// <summary>
    /// A detour around one block on an edge without stops, or null when the pattern has no such edge with room on
    /// either side.
    /// </summary>
    public static TripPath? WithDetour(StreetNetwork network, Pattern pattern, SimRandom rng)
    {
        var candidates = new List<(int k, int side)>();
        for (var k = 2; k < pattern.Edges.Length - 2; k++)
        {
            var from = pattern.NodeDistance[k];
            var to = pattern.NodeDistance[k + 1];
            if (pattern.StopDistance.Any(d => d >= from - 30 && d <= to + 30))
            {
                continue;
            }

            var dir = StreetNetwork.EdgeDirection(pattern.Edges[k]);
            foreach (var side in new[] { (dir + 1) & 3, (dir + 3) & 3 })
            {
                var a1 = network.EdgeTo((pattern.Nodes[k] * 4) + side);
                var b1 = network.EdgeTo((pattern.Nodes[k + 1] * 4) + side);
                if (a1 >= 0 && b1 >= 0 && !pattern.Nodes.Contains(a1) && !pattern.Nodes.Contains(b1))
                {
                    candidates.Add((k, side));
                }
            }
        }

        if (candidates.Count == 0)
        {
            return null;
        }

        var (at, turn) = candidates[rng.NextInt(0, candidates.Count)];
        var nodes = new List<int>(pattern.Nodes.Length + 2);
        nodes.AddRange(pattern.Nodes.AsSpan(0, at + 1));
        nodes.Add(network.EdgeTo((pattern.Nodes[at] * 4) + turn));
        nodes.Add(network.EdgeTo((pattern.Nodes[at + 1] * 4) + turn));
        nodes.AddRange(pattern.Nodes.AsSpan(at + 1));
        var path = new TripPath(network, [.. nodes], [], at);
        var extra = path.Length - pattern.Length;
        var stops = pattern.StopDistance.Select(d => d > pattern.NodeDistance[at] ? d + extra : d).ToArray();
        return new TripPath(network, [.. nodes], stops, at);
    }
}
