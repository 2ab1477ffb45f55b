module github.com/masterless-go/masterless

go 1.26
