using System.Globalization;
using System.Security;
using System.Text;

namespace Fleet.Predict.Evaluation;

/// <summary>Draws "MAE by horizon bucket", one line per predictor, as a self-contained SVG document.</summary>
public static class SvgPlot
{
    private static readonly string[] Palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

    /// <summary>Renders the plot of <paramref name="scorecard"/>.</summary>
    public static string MaeByHorizon(Scorecard scorecard, string title = "MAE by prediction horizon")
    {
        ArgumentNullException.ThrowIfNull(scorecard);
        const double Width = 760, Height = 440, Left = 70, Right = 170, Top = 50, Bottom = 60;
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom;
        var buckets = HorizonBucket.All;
        var max = 0.0;
        foreach (var p in scorecard.Predictors)
        {
            for (var b = 0; b < buckets.Count; b++)
            {
                var v = scorecard.Score(p, b).Mae;
                if (double.IsFinite(v))
                {
                    max = Math.Max(max, v);
                }
            }
        }

        var step = NiceStep(max <= 0 ? 1 : max / 5);
        var top = Math.Max(step, Math.Ceiling(max / step) * step);
        double X(int b) => Left + (plotW * (b + 0.5) / buckets.Count);
        double Y(double v) => Top + plotH - (plotH * v / top);

        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="sans-serif" font-size="12">""").Append('\n');
        sb.Append(inv, $"""<rect width="{Width}" height="{Height}" fill="white"/>""").Append('\n');
        sb.Append(inv, $"""<text x="{Left + (plotW / 2):0.#}" y="28" text-anchor="middle" font-size="16">{SecurityElement.Escape(title)}</text>""").Append('\n');
        for (var v = 0.0; v <= top + (step / 2); v += step)
        {
            var y = Y(v);
            sb.Append(inv, $"""<line x1="{Left}" y1="{y:0.##}" x2="{Left + plotW}" y2="{y:0.##}" stroke="#ddd"/>""");
            sb.Append(inv, $"""<text x="{Left - 8}" y="{y + 4:0.##}" text-anchor="end">{v:0.##}</text>""").Append('\n');
        }

        sb.Append(inv, $"""<line x1="{Left}" y1="{Top}" x2="{Left}" y2="{Top + plotH}" stroke="black"/>""");
        sb.Append(inv, $"""<line x1="{Left}" y1="{Top + plotH}" x2="{Left + plotW}" y2="{Top + plotH}" stroke="black"/>""").Append('\n');
        for (var b = 0; b < buckets.Count; b++)
        {
            sb.Append(inv, $"""<text x="{X(b):0.##}" y="{Top + plotH + 18}" text-anchor="middle">{buckets[b].Name}</text>""").Append('\n');
        }

        sb.Append(inv, $"""<text x="{Left + (plotW / 2):0.#}" y="{Height - 15}" text-anchor="middle">minutes to arrival</text>""").Append('\n');
        sb.Append(inv, $"""<text transform="translate(20 {Top + (plotH / 2):0.#}) rotate(-90)" text-anchor="middle">MAE (seconds)</text>""").Append('\n');

        var index = 0;
        foreach (var p in scorecard.Predictors)
        {
            var color = Palette[index % Palette.Length];
            var points = new StringBuilder();
            for (var b = 0; b < buckets.Count; b++)
            {
                var v = scorecard.Score(p, b).Mae;
                if (double.IsFinite(v))
                {
                    points.Append(inv, $"{X(b):0.##},{Y(v):0.##} ");
                    sb.Append(inv, $"""<circle cx="{X(b):0.##}" cy="{Y(v):0.##}" r="3" fill="{color}"/>""");
                }
            }

            sb.Append(inv, $"""<polyline fill="none" stroke="{color}" stroke-width="2" points="{points.ToString().TrimEnd()}"/>""").Append('\n');
            var ly = Top + 10 + (index * 20);
            sb.Append(inv, $"""<line x1="{Left + plotW + 20}" y1="{ly}" x2="{Left + plotW + 45}" y2="{ly}" stroke="{color}" stroke-width="2"/>""");
            sb.Append(inv, $"""<text x="{Left + plotW + 52}" y="{ly + 4}">{SecurityElement.Escape(p)}</text>""").Append('\n');
            index++;
        }

        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static double NiceStep(double raw)
    {
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var norm = raw / mag;
        var nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
        return nice * mag;
    }
}
