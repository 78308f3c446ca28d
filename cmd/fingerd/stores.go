package main

// The store drivers [store] url can name, by scheme.
import _ "github.com/openfinger/finger/internal/store/postgres"
