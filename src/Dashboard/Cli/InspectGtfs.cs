using Fleet.Gtfs;
using Fleet.Gtfs.Inspection;

namespace Fleet.Dashboard.Cli;

/// <summary>
/// The GTFS part of <c>fleet inspect</c>: GTFS static feeds (zip or folder), GTFS-Realtime files (.pb, .json)
/// and folders of them. The work is done by <see cref="GtfsInspector"/>; this prints its models.
/// </summary>
internal static class InspectGtfs
{
    /// <summary>
    /// Handles <paramref name="path"/> when it is a GTFS input; returns false (and leaves <paramref name="exitCode"/> 0)
    /// when it is not, so the caller dispatches to the other inspectors.
    /// </summary>
    public static bool TryInspect(string path, string? gtfs, bool json, TextWriter output, out int exitCode)
    {
        exitCode = 0;
        var isStatic = GtfsInspector.IsStaticFeed(path);
        var isRtFile = !isStatic && GtfsInspector.IsRealtimeFile(path);
        var isRtFolder = !isStatic && !isRtFile && GtfsInspector.IsRealtimeFolder(path);
        var isRtArchive = !isStatic && !isRtFile && !isRtFolder && GtfsInspector.IsRealtimeArchive(path);
        if (!isStatic && !isRtFile && !isRtFolder && !isRtArchive)
        {
            return false;
        }

        try
        {
            if (isStatic)
            {
                var summary = GtfsInspector.InspectStatic(path);
                output.WriteLine(json ? GtfsInspector.ToJson(summary) : GtfsInspector.ToText(summary));
                return true;
            }

            var schedule = gtfs is null ? null : GtfsLoader.Load(gtfs);
            if (isRtFile)
            {
                var summary = GtfsInspector.InspectRealtime(path, schedule);
                output.WriteLine(json ? GtfsInspector.ToJson(summary) : GtfsInspector.ToText(summary));
                exitCode = summary.Error is null ? 0 : 1;
            }
            else
            {
                var summary = isRtArchive ? GtfsInspector.InspectRealtimeArchive(path, schedule) : GtfsInspector.InspectRealtimeFolder(path, schedule);
                output.WriteLine(json ? GtfsInspector.ToJson(summary) : GtfsInspector.ToText(summary));
                exitCode = summary.Totals.Error is null ? 0 : 1;
            }
        }
        catch (InvalidDataException ex) when (isRtArchive)
        {
            Console.Error.WriteLine($"fleet inspect: {ex.Message}");
            exitCode = 1;
        }
        catch (GtfsFormatException ex)
        {
            Console.Error.WriteLine($"fleet inspect: {ex.Message}");
            exitCode = 2;
        }

        return true;
    }
}
