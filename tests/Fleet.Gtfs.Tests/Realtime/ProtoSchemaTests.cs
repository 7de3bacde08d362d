using Fleet.Testing;
using Google.Protobuf;
using TransitRealtime;
using Xunit;

namespace Fleet.Gtfs.Tests.Realtime;

public sealed class ProtoSchemaTests
{
    [Fact]
    public void FeedMessage_RoundTrip_KeepsEveryKindOfEntity()
    {
        var feed = new FeedMessage
        {
            Header = new FeedHeader { GtfsRealtimeVersion = "2.0", Timestamp = 1_700_000_000 },
        };
        feed.Entity.Add(new FeedEntity
        {
            Id = "tu",
            TripUpdate = new TripUpdate
            {
                Trip = new TripDescriptor { TripId = "t1", StartDate = "20231107", StartTime = "25:10:00" },
                StopTimeUpdate =
                {
                    new TripUpdate.Types.StopTimeUpdate { StopSequence = 3, StopId = "s3", Arrival = new TripUpdate.Types.StopTimeEvent { Delay = 60 } },
                },
            },
        });
        feed.Entity.Add(new FeedEntity
        {
            Id = "vp",
            Vehicle = new VehiclePosition { Position = new Position { Latitude = 37.5f, Longitude = -122.3f }, Timestamp = 1_699_999_990 },
        });
        feed.Entity.Add(new FeedEntity
        {
            Id = "al",
            Alert = new Alert { HeaderText = new TranslatedString { Translation = { new TranslatedString.Types.Translation { Text = "hi", Language = "en" } } } },
        });

        var back = FeedMessage.Parser.ParseFrom(feed.ToByteArray());

        Assert.Equal(feed, back);
        Assert.Equal(3, back.Entity.Count);
        Assert.Equal("25:10:00", back.Entity[0].TripUpdate.Trip.StartTime);
        Assert.Equal(60, back.Entity[0].TripUpdate.StopTimeUpdate[0].Arrival.Delay);
        Assert.Equal(Alert.Types.Effect.UnknownEffect, back.Entity[2].Alert.Effect);
    }

    [Fact]
    public void FeedMessage_CaltrainTripUpdates_DecodesNineteenTripUpdates()
    {
        // PROVENANCE.md (gtfs-rt, caltrain_2023-11-07): 19 trip updates.
        var path = SharedData.RequireFile("gtfs-rt/caltrain_2023-11-07/trip-updates_1699405534.pb");

        var feed = FeedMessage.Parser.ParseFrom(File.ReadAllBytes(path));

        Assert.Equal(19, feed.Entity.Count(e => e.TripUpdate is not null));
    }
}
