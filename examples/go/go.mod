module kinfer.example/producer

go 1.19

require (
	github.com/linkedin/goavro/v2 v2.12.0
	github.com/segmentio/kafka-go v0.4.47
)

require (
	github.com/golang/snappy v0.0.1 // indirect
	github.com/klauspost/compress v1.15.9 // indirect
	github.com/pierrec/lz4/v4 v4.1.15 // indirect
)
