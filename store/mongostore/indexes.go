package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Error codes of a dropIndexes with nothing to drop, and of a create of a
// collection that exists.
const (
	codeNamespaceNotFound = 26
	codeIndexNotFound     = 27
	codeNamespaceExists   = 48
)

// probeIndexUse asks the server whether it would read through an index for
// a filter on a field other than _id, and remembers the answer in
// s.secondaryIndexes. MongoDB (and any server that answers explain without
// FerretDB's filterPushdown field) does, and so does FerretDB v1 on
// PostgreSQL, which pushes such a filter down. FerretDB v1 on SQLite does not:
// it answers every query but one by a lone _id by reading the whole
// collection, so there a secondary index only costs every insert
// (maintaining an index on a field of the stored JSON costs the embedded
// server about half again the work of the insert itself).
func (s *Store) probeIndexUse(ctx context.Context) error {
	// FerretDB explains a find in a collection that does not exist yet
	// as not pushed down on every backend, even one that reads indexes:
	// the collection must exist for the answer to mean anything.
	err := s.db.CreateCollection(ctx, EventsCollection)
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == codeNamespaceExists) {
		return fmt.Errorf("mongostore: create collection %s: %w", EventsCollection, wrap(err))
	}
	cmd := bson.D{
		{Key: "explain", Value: bson.D{
			{Key: "find", Value: EventsCollection},
			{Key: "filter", Value: bson.D{{Key: "messageId", Value: ""}}},
		}},
		{Key: "verbosity", Value: "queryPlanner"},
	}
	var res bson.M
	if err := s.db.RunCommand(ctx, cmd).Decode(&res); err != nil {
		if unreachable(err) || ctx.Err() != nil {
			return fmt.Errorf("mongostore: explain a find by message ID: %w", wrap(err))
		}
		// A server that will not explain (a user without the right) gets
		// the indexes, as every server did before the question was asked.
		s.log.Warn("the server did not explain a query; the store creates its indexes", "err", err)
		s.secondaryIndexes = true
		return nil
	}
	pushdown, reported := res["filterPushdown"].(bool)
	s.secondaryIndexes = !reported || pushdown
	if !s.secondaryIndexes {
		s.log.Info("the server reads no secondary index (it pushes no filter but _id down); the store creates none there")
	}
	return nil
}

// ensureIndex creates the index name on coll, or, on a server that would
// not read it (see probeIndexUse), makes sure it is not there: dropping one
// an earlier version created, so that inserts stop paying for it.
func (s *Store) ensureIndex(ctx context.Context, coll *mongo.Collection, name string, keys bson.D) error {
	if !s.secondaryIndexes {
		err := coll.Indexes().DropOne(ctx, name)
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && (ce.Code == codeIndexNotFound || ce.Code == codeNamespaceNotFound)) {
			return fmt.Errorf("mongostore: drop the unused index %s on %s: %w", name, coll.Name(), wrap(err))
		}
		return nil
	}
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name)})
	if err != nil {
		return fmt.Errorf("mongostore: create index %s on %s: %w", name, coll.Name(), wrap(err))
	}
	return nil
}
