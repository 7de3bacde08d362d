namespace Fleet.Mqtt.Tests;

public sealed class MqttTopicTests
{
    // Examples from MQTT 3.1.1 section 4.7.1.
    [Theory]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)]
    [InlineData("sport/#", "sport", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1/ranking", false)]
    [InlineData("sport/+", "sport", false)]
    [InlineData("sport/+", "sport/", true)]
    [InlineData("+/+", "/finance", true)]
    [InlineData("/+", "/finance", true)]
    [InlineData("+", "/finance", false)]
    [InlineData("#", "$SYS/broker", false)]
    [InlineData("+/monitor/Clients", "$SYS/monitor/Clients", false)]
    [InlineData("$SYS/#", "$SYS/broker", true)]
    [InlineData("/hfp/v2/journey/ongoing/+/bus/#", "/hfp/v2/journey/ongoing/vp/bus/0018/01029/5520/1/Martinlaakso/17:35/4150208/5/60;24/28/65/93", true)]
    public void Matches_SpecExamples(string filter, string topic, bool expected)
    {
        Assert.Equal(expected, MqttTopic.Matches(filter, topic));
    }

    [Theory]
    [InlineData("sport/tennis#")]
    [InlineData("sport/tennis/#/ranking")]
    [InlineData("sport+")]
    [InlineData("")]
    public void ValidateFilter_InvalidWildcards_Throws(string filter)
    {
        Assert.Throws<ArgumentException>(() => MqttTopic.ValidateFilter(filter));
    }

    [Theory]
    [InlineData("a/+")]
    [InlineData("a/#")]
    public void ValidateName_Wildcards_Throws(string topic)
    {
        var ex = Assert.Throws<ArgumentException>(() => MqttTopic.ValidateName(topic));
        Assert.Contains("wildcard", ex.Message, StringComparison.Ordinal);
    }
}
