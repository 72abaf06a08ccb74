/* placeholder, replaced by ckpt-restore */
int main(void)
{
	return 1;
}
