package mongostore

// OptOutID is the _id of an opt-out, for tests that preload a list.
var OptOutID = optOutID
