module github.com/smsgw/smsgw/dev

go 1.26.0
