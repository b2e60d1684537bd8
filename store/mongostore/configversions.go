package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
)

// ConfigVersionsCollection holds every version of the configuration the
// admin API keeps, each with the audit record of its change, under its
// version number: inserting version N+1 is the one atomic step of a change,
// so two changes made at once on different replicas cannot both become N+1.
const ConfigVersionsCollection = "config_versions"

func (s *Store) configVersions() *mongo.Collection { return s.db.Collection(ConfigVersionsCollection) }

// configVersionDoc is a configuration version as stored.
type configVersionDoc struct {
	Version int64       `bson:"_id"`
	At      time.Time   `bson:"at"`
	Who     string      `bson:"who"`
	Action  string      `bson:"action"`
	Changes []string    `bson:"changes"`
	Config  string      `bson:"config,omitempty"`
	Keys    []apiKeyDoc `bson:"keys,omitempty"`
}

type apiKeyDoc struct {
	ID         string    `bson:"id"`
	CustomerID string    `bson:"customerId"`
	Prefix     string    `bson:"prefix,omitempty"`
	CreatedAt  time.Time `bson:"createdAt"`
}

func (d configVersionDoc) version() smsgw.ConfigVersion {
	v := smsgw.ConfigVersion{Version: d.Version, At: d.At, Who: d.Who, Action: d.Action, Changes: d.Changes}
	if d.Config != "" {
		v.Config = []byte(d.Config)
	}
	for _, k := range d.Keys {
		v.Keys = append(v.Keys, smsgw.APIKeyInfo{ID: k.ID, CustomerID: k.CustomerID, Prefix: k.Prefix, CreatedAt: k.CreatedAt})
	}
	return v
}

// PutConfigVersion stores a new version of the configuration. Versions are
// taken in order: v.Version must be 1 more than the latest stored (1 for
// the first), and a version already stored, by another replica that got
// there first, gives an error with code ECONFLICT.
func (s *Store) PutConfigVersion(ctx context.Context, v smsgw.ConfigVersion) error {
	if v.Version < 1 {
		return smsgw.Errorf(smsgw.EINVALID, "configuration version %d: versions start at 1", v.Version)
	}
	latest, err := s.ConfigVersionNumber(ctx)
	if err != nil {
		return err
	}
	if v.Version != latest+1 {
		return smsgw.Errorf(smsgw.ECONFLICT, "the configuration is at version %d, so version %d cannot follow it", latest, v.Version)
	}
	doc := configVersionDoc{
		Version: v.Version, At: v.At.UTC().Truncate(time.Millisecond), Who: v.Who, Action: v.Action,
		Changes: v.Changes, Config: string(v.Config),
	}
	if doc.Changes == nil {
		doc.Changes = []string{}
	}
	for _, k := range v.Keys {
		doc.Keys = append(doc.Keys, apiKeyDoc{ID: k.ID, CustomerID: k.CustomerID, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UTC().Truncate(time.Millisecond)})
	}
	if _, err := s.configVersions().InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return smsgw.Errorf(smsgw.ECONFLICT, "configuration version %d was stored by another change first", v.Version)
		}
		return fmt.Errorf("mongostore: put configuration version %d: %w", v.Version, wrap(err))
	}
	return nil
}

// LatestConfigVersion returns the configuration in force, or an error with
// code ENOTFOUND while none is stored.
func (s *Store) LatestConfigVersion(ctx context.Context) (smsgw.ConfigVersion, error) {
	var doc configVersionDoc
	err := s.configVersions().FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return smsgw.ConfigVersion{}, smsgw.Errorf(smsgw.ENOTFOUND, "no configuration is stored")
	}
	if err != nil {
		return smsgw.ConfigVersion{}, fmt.Errorf("mongostore: latest configuration version: %w", wrap(err))
	}
	return doc.version(), nil
}

// ConfigVersionNumber returns the number of the latest configuration
// version, 0 while none is stored. It reads only the number, for replicas
// that poll for changes.
func (s *Store) ConfigVersionNumber(ctx context.Context) (int64, error) {
	var doc struct {
		Version int64 `bson:"_id"`
	}
	err := s.configVersions().FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongostore: configuration version: %w", wrap(err))
	}
	return doc.Version, nil
}

// ListConfigVersions returns the audit records of the versions before
// before (every version when before is 0), newest first, at most limit of
// them, without the configurations themselves.
func (s *Store) ListConfigVersions(ctx context.Context, before int64, limit int) ([]smsgw.ConfigVersion, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize
	}
	filter := bson.D{}
	if before > 0 {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: before}}}}
	}
	cur, err := s.configVersions().Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "config", Value: 0}, {Key: "keys", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: list configuration versions: %w", wrap(err))
	}
	var docs []configVersionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongostore: list configuration versions: %w", wrap(err))
	}
	out := make([]smsgw.ConfigVersion, len(docs))
	for i, d := range docs {
		out[i] = d.version()
	}
	return out, nil
}
