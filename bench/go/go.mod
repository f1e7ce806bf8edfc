module sluice/bench/chanbench

go 1.19
