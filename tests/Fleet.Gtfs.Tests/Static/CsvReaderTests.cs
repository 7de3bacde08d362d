using Fleet.Gtfs.Csv;
using Xunit;

namespace Fleet.Gtfs.Tests.Static;

public sealed class CsvReaderTests
{
    private static List<string[]> ReadAll(CsvReader csv, List<int>? lines = null)
    {
        var rows = new List<string[]>();
        while (csv.Read())
        {
            var row = new string[csv.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = csv[i].ToString();
            }

            rows.Add(row);
            lines?.Add(csv.LineNumber);
        }

        return rows;
    }

    [Fact]
    public void Read_QuotedFieldsWithCommasQuotesAndNewlines_Unescapes()
    {
        var csv = new CsvReader("t.txt", "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nplain,,last");
        var lines = new List<int>();

        var rows = ReadAll(csv, lines);

        Assert.Equal(["a", "b", "c"], csv.Header);
        Assert.Equal(2, rows.Count);
        Assert.Equal(["x, y", "say \"hi\"", "two\nlines"], rows[0]);
        Assert.Equal(["plain", "", "last"], rows[1]);
        Assert.Equal([2, 4], lines);
    }

    [Fact]
    public void FromUtf8_BomAndCarriageReturns_AreSkipped()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("id, name \r1,é\r\r2,b\n")];

        var csv = CsvReader.FromUtf8("t.txt", bytes);
        var lines = new List<int>();
        var rows = ReadAll(csv, lines);

        Assert.Equal(1, csv.IndexOf("name"));
        Assert.Equal(0, csv.IndexOf("id"));
        Assert.Equal([["1", "é"], ["2", "b"]], rows);
        Assert.Equal([2, 4], lines);
    }

    [Fact]
    public void Indexer_ShortRow_ReturnsEmpty()
    {
        var csv = new CsvReader("t.txt", "a,b,c\n1\n");

        Assert.True(csv.Read());

        Assert.Equal(1, csv.FieldCount);
        Assert.True(csv[2].IsEmpty);
        Assert.True(csv[-1].IsEmpty);
    }

    [Fact]
    public void Read_UnterminatedQuote_KeepsRestAsOneField()
    {
        var csv = new CsvReader("t.txt", "a,b\n1,\"open\n2,3\n");

        var rows = ReadAll(csv);

        Assert.Single(rows);
        Assert.Equal("open\n2,3\n", rows[0][1]);
    }

    [Fact]
    public void Read_EmptyText_HasNoHeaderAndNoRows()
    {
        var csv = new CsvReader("t.txt", string.Empty);

        Assert.Empty(csv.Header);
        Assert.False(csv.Read());
    }
}
