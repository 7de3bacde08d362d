using System.Globalization;
using System.Text;
using Fleet.Simulation.City;
using Fleet.Simulation.Dynamics;

namespace Fleet.Simulation.Output;

/// <summary>
/// Writes <c>truth.csv</c>: the actual arrival and departure of every trip at every stop,
/// <c>trip_id,stop_id,stop_sequence,vehicle,arrival,departure</c>, times ISO-8601 UTC with milliseconds.
/// </summary>
/// <remarks>
/// Arrival is the moment the bus stopped at the stop (the HFP ARS event), departure the moment it started to move
/// again (PDE); for a stop passed without stopping (PAS) both are the moment it passed. At the first stop arrival
/// equals departure; at the last stop departure equals arrival. Rows are in trips.txt order, then by stop_sequence.
/// </remarks>
public static class TruthWriter
{
    /// <summary>The CSV header line.</summary>
    public const string Header = "trip_id,stop_id,stop_sequence,vehicle,arrival,departure";

    /// <summary>Writes the truth; throws if the simulation left a stop without a time (a bug).</summary>
    public static void Write(CityModel city, DaySimulation day, Stream output)
    {
        ArgumentNullException.ThrowIfNull(city);
        ArgumentNullException.ThrowIfNull(day);
        ArgumentNullException.ThrowIfNull(output);
        using var writer = new StreamWriter(output, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        writer.Write(Header);
        writer.Write('\n');
        var line = new Utf8Line(256);
        var baseTicks = city.ServiceDayStartUtc.Ticks;
        foreach (var trip in city.Trips)
        {
            var arrivals = day.TruthArrivalMs[trip.Index];
            var departures = day.TruthDepartureMs[trip.Index];
            for (var k = 0; k < arrivals.Length; k++)
            {
                if (arrivals[k] < 0 || departures[k] < 0)
                {
                    throw new InvalidOperationException($"no actual time for trip {trip.Id} stop sequence {k + 1}");
                }

                line.Clear();
                line.AppendTimestamp(baseTicks + (arrivals[k] * TimeSpan.TicksPerMillisecond), 3).Append((byte)',')
                    .AppendTimestamp(baseTicks + (departures[k] * TimeSpan.TicksPerMillisecond), 3);
                writer.Write(string.Create(CultureInfo.InvariantCulture,
                    $"{trip.Id},{city.Stops[trip.Pattern.Stops[k]].Id},{k + 1},{day.TripVehicle[trip.Index]},{Encoding.ASCII.GetString(line.Written)}\n"));
            }
        }
    }
}
