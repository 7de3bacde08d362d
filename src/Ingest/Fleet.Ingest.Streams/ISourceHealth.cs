namespace Fleet.Ingest.Streams;

/// <summary>
/// Where a streamed source reports how it is doing (the host shows it in <c>/api/health</c> and <c>/metrics</c>).
/// </summary>
/// <remarks>Called from the stream's stages and the source's connection tasks: implementations must be thread-safe.</remarks>
public interface ISourceHealth
{
    /// <summary>The source's state: <c>connecting</c>, <c>connected</c>, <c>reconnecting</c>, <c>polling</c>,
    /// <c>standby</c>, <c>failed</c> or <c>stopped</c>.</summary>
    /// <param name="state">The state's name.</param>
    /// <param name="connected">True while the source receives.</param>
    public void ReportState(string state, bool connected);

    /// <summary>A failed connection or poll: counted, and its reason kept as the last error.</summary>
    /// <param name="reason">What went wrong, one line.</param>
    public void ReportFailure(string reason);

    /// <summary>The source works again: the last error is cleared.</summary>
    public void ReportRecovered();

    /// <summary>An input the source could not use, counted by a named reason (never dropped silently).</summary>
    /// <param name="reason">The reason's name, e.g. <c>GtfsRtUndecodable</c>.</param>
    /// <param name="detail">The one-line detail, kept as the last error.</param>
    public void ReportRejected(string reason, string detail);
}
